package acl

// Revocations is told of each revocation a store learns of from its database
// — made by any node, by the admin command or by a refresh token's reuse —
// so that the node forgets its cached session answers and ends the sockets
// of that session or user. caseroomd implements it over token.Auth and the
// chat hub; acl/postgres ListenRevocations and acl/sqlite PollRevocations
// tell it.
type Revocations interface {
	ForgetSession(session string)
	ForgetUser(user UserID)
}
