package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"caseroom/acl"
	"caseroom/acl/token"
	"caseroom/chat"
)

// BenchFile is what "caseroomd admin bench-provision" writes and
// cmd/caseroom-bench reads: the users it created with their passwords and the
// tokens of one login each, and the rooms it opened. It holds secrets of test
// accounts only; keep it out of the repository.
type BenchFile struct {
	Created   time.Time   `json:"created"`
	Database  string      `json:"database"` // "sqlite" or "postgres"
	Prefix    string      `json:"prefix"`
	BlockSize int         `json:"block_size"` // users per block
	RoomSize  int         `json:"room_size"`
	Users     []BenchUser `json:"users"`
	// Rooms[b][j] is room j of block b; Members[b][j] lists its members as
	// indexes into Users. Rooms 0..BlockSize/RoomSize-1 of a block partition
	// its users (each user is in exactly one of them): the fan-out rooms.
	Rooms   [][]chat.RoomID `json:"rooms"`
	Members [][][]int       `json:"members"`
}

// BenchUser is one provisioned account.
type BenchUser struct {
	ID        acl.UserID `json:"id"`
	Password  string     `json:"password"`
	Unit      acl.UnitID `json:"unit"`
	Refresh   string     `json:"refresh"`
	Access    string     `json:"access,omitempty"`
	AccessExp time.Time  `json:"access_exp,omitzero"`
}

const benchUsage = `usage: caseroomd admin [-config FILE] bench-provision OUT.json [-users N] [-prefix P] [-per-unit 100] [-workers 2]

Creates N users for cmd/caseroom-bench through the directory (argon2id hashes,
audited as the console), units of -per-unit users each with their unit rooms,
and group rooms of -room members in blocks of 10*-room users, where every user
is a member of -rooms-per-user rooms; logs every user in once (argon2id again)
and writes usernames, passwords and tokens to OUT.json (mode 0600).
`

// benchProvision is "caseroomd admin bench-provision". It goes through the
// same Directory, Auth and chat.Service paths as the console commands, with
// -workers of them at once, since argon2id dominates.
func benchProvision(ctx context.Context, a *app, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
		fmt.Fprint(stderr, benchUsage)
		return errors.New("bench-provision: name the file to write first")
	}
	out := &args[0]
	args = args[1:]
	fs := flag.NewFlagSet("admin bench-provision", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage) }
	n := fs.Int("users", 1000, "users to create")
	prefix := fs.String("prefix", "bench", "username and unit id prefix")
	perUnit := fs.Int("per-unit", 100, "users per unit")
	roomsPer := fs.Int("rooms-per-user", 10, "group rooms each user is a member of")
	roomSize := fs.Int("room", 20, "members per group room")
	workers := fs.Int("workers", 2, "concurrent argon2id hashes and logins")
	region := fs.String("region", "150102", "region code of the units")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("bench-provision: %s exists; use another file", *out)
	}
	// Layout: a block of B = 10*roomSize users holds B*roomsPer/roomSize rooms.
	// With B = 200, roomSize 20, roomsPer 10: 100 rooms; user u (0..199) of the
	// block is in rooms (u/2 + 10k) mod 100 for k = 0..9, which gives every room
	// 20 members and puts every user in exactly one of rooms 0..9.
	if *roomSize != 20 || *roomsPer != 10 {
		return errors.New("bench-provision: only -room 20 -rooms-per-user 10 is laid out (blocks of 200 users, 100 rooms)")
	}
	const block = 200
	if *n%block != 0 || *n <= 0 {
		return fmt.Errorf("bench-provision: -users must be a positive multiple of %d", block)
	}
	if *perUnit <= 0 || *n%*perUnit != 0 {
		return errors.New("bench-provision: -users must be a multiple of -per-unit")
	}
	ctx = acl.WithSubject(ctx, acl.ConsoleSubject())
	f := BenchFile{Created: time.Now().UTC(), Database: a.st.kind, Prefix: *prefix, BlockSize: block, RoomSize: *roomSize,
		Users: make([]BenchUser, *n)}

	// Units, each with its unit room (OnUnitCreated).
	units := *n / *perUnit
	for i := 0; i < units; i++ {
		id := acl.UnitID(fmt.Sprintf("%s-u%04d", *prefix, i))
		_, err := a.dir.CreateUnit(ctx, acl.Unit{ID: id, Kind: "police", Region: acl.RegionCode(*region),
			Name: fmt.Sprintf("压测公安单位%04d", i), NonTerritorial: true})
		if err != nil {
			return fmt.Errorf("bench-provision: unit %s: %w", id, err)
		}
	}
	fmt.Fprintf(stdout, "bench-provision: %d units\n", units)

	// Users and one login each, -workers at a time.
	start := time.Now()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *workers)
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n || ctx.Err() != nil {
					return
				}
				name := fmt.Sprintf("%s.%05d", *prefix, i)
				unit := acl.UnitID(fmt.Sprintf("%s-u%04d", *prefix, i / *perUnit))
				u, pw, err := a.dir.CreateUser(ctx, acl.NewUser{Username: name, Name: fmt.Sprintf("压测用户%05d", i),
					Unit: unit, Roles: []acl.Role{acl.Officer}})
				if err != nil {
					errs <- fmt.Errorf("bench-provision: user %s: %w", name, err)
					return
				}
				tk, err := a.auth.Login(ctx, name, pw, token.ClientMeta{IP: "127.0.0.1", UserAgent: "caseroomd bench-provision"})
				if err != nil {
					errs <- fmt.Errorf("bench-provision: login %s: %w", name, err)
					return
				}
				f.Users[i] = BenchUser{ID: u.ID, Password: pw, Unit: unit, Refresh: tk.Refresh, Access: tk.Access, AccessExp: tk.AccessExpires}
				if d := done.Add(1); d%1000 == 0 {
					fmt.Fprintf(stdout, "bench-provision: %d users (%.0f/s)\n", d, float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	for i := 0; i < units; i++ {
		if err := a.syncUnitRoom(ctx, acl.UnitID(fmt.Sprintf("%s-u%04d", *prefix, i))); err != nil {
			return fmt.Errorf("bench-provision: unit room: %w", err)
		}
	}

	// Group rooms, owned by their first member's unit.
	blocks := *n / block
	roomsPerBlock := block * *roomsPer / *roomSize
	f.Rooms = make([][]chat.RoomID, blocks)
	f.Members = make([][][]int, blocks)
	for b := 0; b < blocks; b++ {
		members := make([][]int, roomsPerBlock)
		for u := 0; u < block; u++ {
			for k := 0; k < *roomsPer; k++ {
				j := (u/2 + 10*k) % roomsPerBlock
				members[j] = append(members[j], b*block+u)
			}
		}
		f.Members[b] = members
		f.Rooms[b] = make([]chat.RoomID, roomsPerBlock)
		for j, ms := range members {
			refs := make([]chat.MemberRef, 0, len(ms))
			for k, ui := range ms {
				role := chat.Member
				if k == 0 {
					role = chat.Owner
				}
				refs = append(refs, chat.MemberRef{User: f.Users[ui].ID, Unit: f.Users[ui].Unit, Role: role})
			}
			r := chat.Room{Kind: chat.GroupRoom, Name: fmt.Sprintf("压测群%03d-%03d", b, j),
				OwnerUnit: refs[0].Unit, Region: acl.RegionCode(*region)}
			if err := a.chat.Open(ctx, &r, refs, acl.ConsoleSubject()); err != nil {
				return fmt.Errorf("bench-provision: room %d/%d: %w", b, j, err)
			}
			f.Rooms[b][j] = r.ID
		}
	}
	fmt.Fprintf(stdout, "bench-provision: %d rooms of %d\n", blocks*roomsPerBlock, *roomSize)

	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, b, 0o600); err != nil {
		return fmt.Errorf("bench-provision: %w", err)
	}
	fmt.Fprintf(stdout, "bench-provision: %d users in %s (%.0fs)\n", *n, *out, time.Since(start).Seconds())
	return nil
}
