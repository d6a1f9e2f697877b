package token

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"caseroom/acl"
)

// Default argon2id parameters: the first of OWASP's Password Storage Cheat Sheet
// equivalent configurations (19 MiB of memory, 2 passes, 1 lane).
const (
	DefaultMemory  = 19456 // KiB
	DefaultTime    = 2
	DefaultThreads = 1
)

// Sizes of what HashPassword stores.
const (
	saltLen = 16
	keyLen  = 32
)

// Bounds on parameters read back from a stored hash, so that a corrupt or
// planted hash cannot make one verification take gigabytes or minutes.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 64
	maxThreads = 64
	maxSaltLen = 64
	maxKeyLen  = 64
)

// ErrMalformedHash is returned by VerifyPassword for a stored string that is not
// an argon2id PHC string this package can check. It means corrupt data, not a
// wrong password.
var ErrMalformedHash = errors.New("token: malformed password hash")

// PasswordParams are the argon2id cost parameters for new hashes. A zero field
// takes its default (DefaultMemory, DefaultTime, DefaultThreads). Verification
// reads the parameters of each stored hash from the hash itself, so changing
// these keeps old hashes valid; NeedsRehash reports which hashes use others.
type PasswordParams struct {
	Memory  uint32 // KiB; default 19456
	Time    uint32 // passes; default 2
	Threads uint8  // lanes; default 1
}

// withDefaults fills zero fields.
func (p PasswordParams) withDefaults() PasswordParams {
	if p.Memory == 0 {
		p.Memory = DefaultMemory
	}
	if p.Time == 0 {
		p.Time = DefaultTime
	}
	if p.Threads == 0 {
		p.Threads = DefaultThreads
	}
	return p
}

// valid reports whether argon2 accepts p and it is within the bounds that
// stored hashes are held to.
func (p PasswordParams) valid() bool {
	return p.Time >= 1 && p.Time <= maxTime &&
		p.Threads >= 1 && p.Threads <= maxThreads &&
		p.Memory >= 8*uint32(p.Threads) && p.Memory <= maxMemory
}

// HashPassword hashes password with argon2id under p (zero fields default) and a
// fresh random 16-byte salt, and returns the PHC string
// "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>" with unpadded
// standard base64 salt and 32-byte key. It does not apply a PasswordPolicy.
func HashPassword(password string, p PasswordParams) (string, error) {
	p = p.withDefaults()
	if !p.valid() {
		return "", fmt.Errorf("token: argon2id parameters out of range: m=%d t=%d p=%d", p.Memory, p.Time, p.Threads)
	}
	salt := make([]byte, saltLen)
	rand.Read(salt) // never fails (crypto/rand since Go 1.24)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	return encodePHC(p, salt, key), nil
}

func encodePHC(p PasswordParams, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parsePHC decodes an argon2id PHC string as HashPassword writes it. The
// parameters must appear in the order m, t, p; anything else is malformed.
func parsePHC(s string) (p PasswordParams, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, ErrMalformedHash
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported argon2 version %q", ErrMalformedHash, parts[2])
	}
	var m, t, th uint64
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return p, nil, nil, ErrMalformedHash
	}
	for i, want := range [...]struct {
		name string
		dst  *uint64
	}{{"m", &m}, {"t", &t}, {"p", &th}} {
		name, val, ok := strings.Cut(params[i], "=")
		if !ok || name != want.name {
			return p, nil, nil, ErrMalformedHash
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return p, nil, nil, ErrMalformedHash
		}
		*want.dst = n
	}
	if th > maxThreads {
		return p, nil, nil, fmt.Errorf("%w: parameters out of range", ErrMalformedHash)
	}
	p = PasswordParams{Memory: uint32(m), Time: uint32(t), Threads: uint8(th)}
	if !p.valid() {
		return p, nil, nil, fmt.Errorf("%w: parameters out of range", ErrMalformedHash)
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err = b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > maxSaltLen {
		return p, nil, nil, fmt.Errorf("%w: bad salt", ErrMalformedHash)
	}
	key, err = b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > maxKeyLen {
		return p, nil, nil, fmt.Errorf("%w: bad key", ErrMalformedHash)
	}
	return p, salt, key, nil
}

// VerifyPassword reports whether password matches the PHC string hash, using the
// parameters, salt and key length stored in hash, and comparing keys in constant
// time. A hash it cannot parse answers false and an error wrapping
// ErrMalformedHash; an empty hash (a bot) answers false, ErrMalformedHash.
func VerifyPassword(hash, password string) (bool, error) {
	p, salt, key, err := parsePHC(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether hash was made with parameters other than p (zero
// fields default) or other salt or key sizes, or cannot be parsed at all; the
// caller may then store a new hash once the password has been verified.
func NeedsRehash(hash string, p PasswordParams) bool {
	got, salt, key, err := parsePHC(hash)
	if err != nil {
		return true
	}
	return got != p.withDefaults() || len(salt) != saltLen || len(key) != keyLen
}

// Password length bounds of the default policy, in characters (runes).
const (
	DefaultMinPasswordLength = 12
	DefaultMaxPasswordLength = 256
)

// A PasswordPolicy says which new passwords are acceptable. It follows NIST SP
// 800-63B: length matters, composition rules do not, and known-bad choices are
// refused. The zero value is the default policy.
type PasswordPolicy struct {
	MinLength int // characters; default 12
	MaxLength int // characters; default 256 (bounds the work of hashing)
}

// commonPasswords are refused whatever their length (compared in lower case).
// The list is short on purpose: the length rule already excludes the bulk of
// breached-password lists.
var commonPasswords = []string{
	"123456789012", "1234567890123", "12345678901234", "123456789abc",
	"passwordpassword", "password1234", "password12345", "password123456",
	"qwertyuiopasdfgh", "qwertyuiop123", "qwerty123456", "1q2w3e4r5t6y",
	"1qaz2wsx3edc", "1qaz2wsx3edc4rfv", "abcdefghijkl", "abc123456789",
	"iloveyou1234", "administrator", "administrator1", "admin1234567",
	"welcome12345", "changeme1234", "letmein12345", "caseroom1234",
	"woaini123456", "a1234567890b",
}

// Check returns nil when password is acceptable as a new password, or an error
// made by acl.Invalid("password", reason) saying why not: too short or too
// long (in characters), not valid UTF-8, containing control characters, one
// character repeated, a well-known password, or containing one of personal
// (the username, the display name; entries shorter than 4 characters are
// ignored), all compared case-insensitively. It never includes the password in
// the error.
func (pol PasswordPolicy) Check(password string, personal ...string) error {
	minLen, maxLen := pol.MinLength, pol.MaxLength
	if minLen <= 0 {
		minLen = DefaultMinPasswordLength
	}
	if maxLen <= 0 {
		maxLen = DefaultMaxPasswordLength
	}
	if !utf8.ValidString(password) {
		return acl.Invalid("password", "must be valid UTF-8 text")
	}
	n := utf8.RuneCountInString(password)
	if n < minLen {
		return acl.Invalid("password", fmt.Sprintf("must be at least %d characters long", minLen))
	}
	if n > maxLen {
		return acl.Invalid("password", fmt.Sprintf("must be at most %d characters long", maxLen))
	}
	for _, r := range password {
		if unicode.IsControl(r) {
			return acl.Invalid("password", "must not contain control characters")
		}
	}
	first, _ := utf8.DecodeRuneInString(password)
	if strings.Count(password, string(first)) == n {
		return acl.Invalid("password", "must not be one character repeated")
	}
	lower := strings.ToLower(password)
	for _, c := range commonPasswords {
		if lower == c {
			return acl.Invalid("password", "is too common")
		}
	}
	for _, p := range personal {
		p = strings.ToLower(strings.TrimSpace(p))
		if utf8.RuneCountInString(p) >= 4 && strings.Contains(lower, p) {
			return acl.Invalid("password", "must not contain the username or name")
		}
	}
	return nil
}

// passwordAlphabet has no characters that are easily confused when read aloud or
// copied by hand (0/O/o, 1/l/I).
const passwordAlphabet = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"

// GeneratePassword returns a new random password for a demo user or an
// administrator's reset, meant to be shown once: five groups of four characters
// from a 56-character alphabet without look-alikes, joined by "-" (about 116
// bits). It satisfies the default PasswordPolicy.
func GeneratePassword() string {
	const groups, per = 5, 4
	var b strings.Builder
	b.Grow(groups*per + groups - 1)
	buf := make([]byte, 1)
	for i := 0; i < groups*per; i++ {
		if i > 0 && i%per == 0 {
			b.WriteByte('-')
		}
		for {
			rand.Read(buf)
			// Reject bytes past the largest multiple of the alphabet size, so
			// that every character is equally likely.
			if limit := 256 - 256%len(passwordAlphabet); int(buf[0]) < limit {
				b.WriteByte(passwordAlphabet[int(buf[0])%len(passwordAlphabet)])
				break
			}
		}
	}
	return b.String()
}
