// Package audit is caseroom's tamper-evident record: entries in streams, each
// stream a hash chain, so that altering, removing, inserting or reordering an
// entry is noticed by Verify. It is pure: stores append entries in the same
// transaction as the action they record, and this package only computes and checks.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"
)

// Outcomes of an audited action.
const (
	OK     = "ok"
	Denied = "denied"
	Failed = "failed"
)

// Well-known streams. Each room's log is its own chain in the chat store; these
// are the chains of the acl store.
const (
	StreamAuth      = "auth"      // logins, refreshes, logouts, lockouts
	StreamDirectory = "directory" // regions, units, users, roles, bots
	StreamDenials   = "denials"   // every action the ACL refused
)

// A Record is what happened, before the store places it in a stream.
type Record struct {
	Stream  string
	At      time.Time
	Actor   string // user or bot id; "" for anonymous (a failed login names the username in Detail)
	Action  string // e.g. "auth.login", "user.create"
	Target  string // what the action was on, e.g. a user id
	Outcome string // OK, Denied or Failed
	Detail  string // short JSON object with what an auditor needs; never a password or token
}

// An Entry is a Record placed in its stream: Seq counts from 1 without gaps and
// Hash chains it to the entry before.
type Entry struct {
	Record
	Seq  int64
	Prev []byte // Hash of entry Seq-1; empty for Seq 1
	Hash []byte
}

// Canonical is the byte form that the hash covers. Times are Unix microseconds
// because both stores keep microseconds; any other field change changes the bytes.
func (r Record) Canonical(seq int64) []byte {
	b, _ := json.Marshal(struct {
		Stream  string `json:"stream"`
		Seq     int64  `json:"seq"`
		At      int64  `json:"at"`
		Actor   string `json:"actor"`
		Action  string `json:"action"`
		Target  string `json:"target"`
		Outcome string `json:"outcome"`
		Detail  string `json:"detail"`
	}{r.Stream, seq, r.At.UnixMicro(), r.Actor, r.Action, r.Target, r.Outcome, r.Detail})
	return b
}

// Next returns the hash of an entry whose canonical bytes are canonical and whose
// predecessor's hash is prev: SHA-256(prev ‖ canonical).
func Next(prev, canonical []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(canonical)
	return h.Sum(nil)
}

// A ChainError names the first entry at which a chain does not verify.
type ChainError struct {
	Seq    int64
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit: chain broken at seq %d: %s", e.Seq, e.Reason)
}

// A Link is one entry of any chain as the verifier sees it: its position, the
// hash it claims for its predecessor, its own hash and the bytes that hash covers.
type Link struct {
	Seq       int64
	Prev      []byte
	Hash      []byte
	Canonical []byte
}

// VerifyLinks checks that links form a chain from seq first on, whose first
// predecessor hash is prev (nil when first is 1): sequence numbers without gap or
// repeat, each Prev equal to the hash before it, and each Hash recomputed from its
// bytes. It returns a *ChainError naming the first bad sequence number.
func VerifyLinks(first int64, prev []byte, links []Link) error {
	want := first
	for _, l := range links {
		if l.Seq != want {
			return &ChainError{Seq: want, Reason: fmt.Sprintf("expected seq %d, found %d", want, l.Seq)}
		}
		if !bytes.Equal(l.Prev, prev) {
			return &ChainError{Seq: l.Seq, Reason: "predecessor hash does not match"}
		}
		if !bytes.Equal(Next(prev, l.Canonical), l.Hash) {
			return &ChainError{Seq: l.Seq, Reason: "content does not match its hash"}
		}
		prev, want = l.Hash, want+1
	}
	return nil
}

// Verify checks a whole stream read from its first entry.
func Verify(entries []Entry) error {
	links := make([]Link, len(entries))
	for i, e := range entries {
		links[i] = Link{Seq: e.Seq, Prev: e.Prev, Hash: e.Hash, Canonical: e.Record.Canonical(e.Seq)}
	}
	return VerifyLinks(1, nil, links)
}
