package sqlite

// SetPollStarted sets the hook PollRevocations calls once it knows where the
// revocation log stands, and returns a function that puts the old one back.
func SetPollStarted(f func()) (restore func()) {
	old := pollStarted
	pollStarted = f
	return func() { pollStarted = old }
}
