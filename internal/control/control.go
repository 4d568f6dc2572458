// Package control is the control socket: hawk upgrade, reload and status send one JSON line and read one back.
//
// The socket (control.socket) is a listener from the upgrader like the others, so
// after an upgrade the new process answers on the same path.
package control

// Request is what a command sends.
type Request struct {
	Cmd string `json:"cmd"` // upgrade, reload, status
}

// Reply is what the server answers: OK and one line for a person, and the facts
// behind it.
type Reply struct {
	OK      bool          `json:"ok"`
	Message string        `json:"message"`
	Status  *Status       `json:"status,omitempty"`
	Upgrade *UpgradeReply `json:"upgrade,omitempty"`
	Changes []string      `json:"changes,omitempty"` // reload: "key: old -> new"
}

// Status is hawk status.
type Status struct {
	PID         int    `json:"pid"`
	Version     string `json:"version"`
	Generation  int    `json:"generation"`
	Ready       bool   `json:"ready"`
	NotReady    string `json:"not_ready,omitempty"`
	Connections int    `json:"connections"`
	LastUpgrade string `json:"last_upgrade,omitempty"`
	LastReload  string `json:"last_reload,omitempty"`
}

// UpgradeReply names the process that took over.
type UpgradeReply struct {
	PreviousPID int    `json:"previous_pid"` // the process that upgraded, now draining
	PID         int    `json:"pid"`
	Version     string `json:"version"`
	Generation  int    `json:"generation"`
}

// Handler answers the commands.
type Handler interface {
	Status() Status
	Reload() Reply
	// Upgrade runs an upgrade and returns its verdict; a reply with Upgrade set
	// keeps the connection open until the process exits (Server).
	Upgrade() Reply
}
