// Package bots holds caseroom's bots: the deadline bot, which reminds case rooms
// of statutory deadlines and escalates the ones that run out, and the platform
// through which external systems act as bots with scoped tokens.
//
// Every bot is an acl.Subject with Bot set, a user of the directory, and
// everything it posts is an ordinary entry of a room's log.
//
// # The deadline bot
//
// A Scheduler reads the open clocks of every case from a ClockSource (the case
// service, which derives them from the case rooms' logs), computes each clock's
// plan — the reminder points of configs/reminders.json, the last day to ask for
// an extension, the expiry — and posts what is due. Exactly once is the
// database's doing, not the scheduler's: each reminder is posted with the
// client id "reminder:<clock key>:<point>" by the bot, and chat stores at most
// one entry per (room, sender, client id), in the transaction that appends it.
// The schedule's cursor (bots_schedule) only saves re-reading: a scheduler
// killed between a reminder's commit and the cursor's advance posts the same
// client id again on restart, which chat answers with the stored entry. A lease
// (bots_leases) keeps other nodes from doing the same work at the same time; it
// saves effort and is not needed for correctness.
//
// After downtime a clock with several points due gets one message: the latest
// point, listing the earlier ones it missed.
//
// # The platform
//
// A Platform keeps bot principals, their tokens and their webhooks. A bot token
// is an opaque secret that names a bot user and a Scope (rooms, message kinds it
// may post, whether it may read, units whose due list it may read); the Gateway
// checks the scope first and then asks chat.Service, so the ACL and room
// membership still decide. Webhooks deliver chosen kinds of the rooms a token
// may read, signed with HMAC-SHA256, retried with exponential backoff.
//
// # What is due
//
// Due lists the open clocks of the caller, of the caller's unit or of the
// caller's jurisdiction, sorted by time left, each with its legal basis.
package bots
