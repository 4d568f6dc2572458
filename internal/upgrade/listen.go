package upgrade

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// ListenInherited is Listen that also says whether the socket came from the
// parent process (true) or was opened here: after an upgrade that moved a listener,
// the new address is opened afresh, and the log must say so.
func (u *Upgrader) ListenInherited(name, addr string) (net.Listener, bool, error) {
	opened := false
	ln, err := u.tf.ListenWithCallback("tcp", listenKey(name, addr), func(network, _ string) (net.Listener, error) {
		opened = true
		return net.Listen(network, addr)
	})
	if err != nil {
		return nil, false, fmt.Errorf("upgrade: listen %s on %s: %w", name, addr, err)
	}
	return ln, !opened, nil
}

// ListenUnix returns the unix stream listener on path with the given permissions,
// inherited from the parent process when it had one on the same path, else new.
// A stale socket file (nobody accepts on it: a process that was killed) is
// replaced; a live one is an error, as a taken TCP port is.
//
// tableflip keys it by the path alone (unlike Listen's name@addr): it unlinks a
// unix socket's file by its key when the last process using it is done, so the key
// must be the path. tableflip also turns off the listener's unlink-on-close, so the
// parent closing its copy at an upgrade leaves the file to the child.
func (u *Upgrader) ListenUnix(path string, mode os.FileMode) (net.Listener, bool, error) {
	opened := false
	ln, err := u.tf.ListenWithCallback("unix", path, func(network, _ string) (net.Listener, error) {
		opened = true
		if err := removeStale(path); err != nil {
			return nil, err
		}
		ln, err := net.Listen(network, path)
		if err != nil {
			return nil, err
		}
		// Listen creates the file with the umask's permissions; narrowing the umask
		// instead would be process-wide. Nothing is accepted before this chmod, and
		// /run/hawk itself is the hawk user's (RuntimeDirectory=).
		if err := os.Chmod(path, mode); err != nil {
			ln.Close()
			return nil, err
		}
		return ln, nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("upgrade: listen control on %s: %w", path, err)
	}
	return ln, !opened, nil
}

// removeStale removes path if it is a socket nobody accepts on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: %w (another hawk serves it)", path, syscall.EADDRINUSE)
	}
	return os.Remove(path)
}

// ListenPacket returns the UDP socket called name on addr: the one inherited from
// the parent process if it had the same name and address, else a new one. The
// parent keeps its copy open while it drains; the socket lives while either holds
// it, so datagrams queued in it reach whichever process reads next.
func (u *Upgrader) ListenPacket(name, addr string) (net.PacketConn, error) {
	pc, err := u.tf.ListenPacketWithCallback("udp", listenKey(name, addr), func(network, _ string) (net.PacketConn, error) {
		return net.ListenPacket(network, addr)
	})
	if err != nil {
		return nil, fmt.Errorf("upgrade: listen %s on %s: %w", name, addr, err)
	}
	return pc, nil
}
