// Package upload stores resumable file uploads: durable offsets, checked atomic publish, limits and one record per file.
//
// # Files
//
// Under the store's directory (by default <spool.dir>/uploads):
//
//	partial/<client>/<upload id>.part   the bytes received so far; its size is the durable offset
//	partial/<client>/<upload id>.json   what the open announced (name, size, sha256, times)
//	files/<client>/<upload id>          a published file, whole and checked
//	files/<client>/<upload id>.json     its record (client, upload id, name, size, sha256, path)
//
// <client> is the hex sha256 of the client id, and the upload id passed
// protocol.ValidUploadID, so no byte from the network becomes a path: the file's
// name is metadata only (ValidName). A chunk is written at the durable offset and,
// with fsync on, synced before it is answered; a write that fails is truncated back,
// so the durable offset is always the size of the .part file, which is what a
// restart (SIGKILL included) resumes from. Publishing is a rename into files/ after
// the size and sha256 were checked, so nothing half-written is ever there.
//
// # One record per file
//
// A published file is announced once through Options.Announce; its .json says
// whether that happened ("announced"), so a retried commit answers done without a
// second record, and a file published but not announced (the announce failed, or
// the process died between publish and announce) is announced by the next commit
// or at the next start (AnnouncePending). The one window left is a death after the
// announce was durable and before the .json says so: that file is announced twice.
package upload
