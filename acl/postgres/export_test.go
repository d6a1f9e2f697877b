package postgres

import "time"

// SetListenCheck shortens how often an idle listener checks its connection.
func SetListenCheck(d time.Duration) (undo func()) {
	old := listenCheck
	listenCheck = d
	return func() { listenCheck = old }
}
