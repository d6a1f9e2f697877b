package token

import (
	"errors"
	"strings"
	"testing"

	"caseroom/acl"
)

// fastParams keep argon2id cheap in tests; TestDefaultPasswordParams checks the
// real defaults once.
var fastParams = PasswordParams{Memory: 64, Time: 1, Threads: 1}

func TestHashPasswordRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse battery staple", fastParams)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("HashPassword = %q, want a PHC argon2id string with m=64,t=1,p=1", h)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"correct horse battery staple", true},
		{"correct horse battery stapl", false},
		{"Correct horse battery staple", false},
		{"", false},
	} {
		got, err := VerifyPassword(h, tc.pw)
		if err != nil || got != tc.want {
			t.Errorf("VerifyPassword(hash, %q) = %v, %v; want %v, nil", tc.pw, got, err, tc.want)
		}
	}
}

func TestHashPasswordSaltsEachHash(t *testing.T) {
	a, _ := HashPassword("same password here", fastParams)
	b, _ := HashPassword("same password here", fastParams)
	if a == b {
		t.Fatalf("two hashes of one password are equal: %q", a)
	}
}

func TestDefaultPasswordParams(t *testing.T) {
	h, err := HashPassword("a password long enough", PasswordParams{})
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	p, salt, key, err := parsePHC(h)
	if err != nil {
		t.Fatalf("parsePHC(%q): %v", h, err)
	}
	want := PasswordParams{Memory: 19456, Time: 2, Threads: 1}
	if p != want || len(salt) != 16 || len(key) != 32 {
		t.Errorf("default hash has params %+v, salt %d bytes, key %d bytes; want %+v, 16, 32", p, len(salt), len(key), want)
	}
	if ok, err := VerifyPassword(h, "a password long enough"); !ok || err != nil {
		t.Errorf("VerifyPassword(default hash) = %v, %v; want true, nil", ok, err)
	}
}

// Hashes keep verifying when the configured parameters change, because
// verification reads them from the hash.
func TestVerifyUsesStoredParams(t *testing.T) {
	old, _ := HashPassword("old parameters password", PasswordParams{Memory: 32, Time: 3, Threads: 2})
	if ok, err := VerifyPassword(old, "old parameters password"); !ok || err != nil {
		t.Fatalf("VerifyPassword(old-params hash) = %v, %v; want true, nil", ok, err)
	}
	if !NeedsRehash(old, fastParams) {
		t.Errorf("NeedsRehash(m=32,t=3,p=2 hash, %+v) = false, want true", fastParams)
	}
	cur, _ := HashPassword("current password x", fastParams)
	if NeedsRehash(cur, fastParams) {
		t.Errorf("NeedsRehash(hash, its own params) = true, want false")
	}
	def, _ := HashPassword("current password x", PasswordParams{})
	if NeedsRehash(def, PasswordParams{}) {
		t.Errorf("NeedsRehash(default hash, zero params) = true, want false (zero means default)")
	}
	if !NeedsRehash("garbage", fastParams) {
		t.Errorf("NeedsRehash(garbage) = false, want true")
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	good, _ := HashPassword("some password x", fastParams)
	parts := strings.Split(good, "$")
	for _, h := range []string{
		"",
		"plain",
		"$argon2i$v=19$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=16$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$t=1,m=64,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=0,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=0$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=257$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=4194304,t=1,p=1$" + parts[4] + "$" + parts[5], // 4 GiB
		"$argon2id$v=19$m=64,t=1,p=1$!!!$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$",
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4],
		good + "$extra",
	} {
		ok, err := VerifyPassword(h, "some password x")
		if ok || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("VerifyPassword(%q) = %v, %v; want false, ErrMalformedHash", h, ok, err)
		}
	}
}

func TestHashPasswordRejectsBadParams(t *testing.T) {
	if _, err := HashPassword("x", PasswordParams{Memory: 8, Time: 1, Threads: 4}); err == nil {
		t.Errorf("HashPassword with m=8,p=4 (less than 8 KiB per lane) succeeded, want an error")
	}
}

func TestPasswordPolicy(t *testing.T) {
	for _, tc := range []struct {
		pol      PasswordPolicy
		pw       string
		personal []string
		ok       bool
	}{
		{PasswordPolicy{}, "short", nil, false},
		{PasswordPolicy{}, "elevenchars", nil, false},
		{PasswordPolicy{}, "twelve chars", nil, true},
		{PasswordPolicy{}, "法院检察院公安局司法局政法委", nil, true}, // 14 characters, 42 bytes
		{PasswordPolicy{}, "法院检察院公安局司法", nil, false},    // 10 characters, 30 bytes
		{PasswordPolicy{MinLength: 20}, "twelve chars", nil, false},
		{PasswordPolicy{MinLength: 8}, "eight ch", nil, true},
		{PasswordPolicy{}, strings.Repeat("ab", 129), nil, false}, // 258 > 256
		{PasswordPolicy{MaxLength: 300}, strings.Repeat("ab", 129), nil, true},
		{PasswordPolicy{}, "aaaaaaaaaaaaaaaa", nil, false},
		{PasswordPolicy{}, "Password1234", nil, false},
		{PasswordPolicy{}, "tab\tinside password", nil, false},
		{PasswordPolicy{}, "bad utf8 \xff\xfe password", nil, false},
		{PasswordPolicy{}, "zhangsan-secret-2024", []string{"ZhangSan", "张三"}, false},
		{PasswordPolicy{}, "my name is 张三丰 ok", []string{"zhangsanfeng", "张三丰x"}, true},
		{PasswordPolicy{}, "abc is short enough", []string{"abc"}, true}, // personal < 4 ignored
	} {
		err := tc.pol.Check(tc.pw, tc.personal...)
		if tc.ok && err != nil {
			t.Errorf("%+v.Check(%q, %q) = %v, want nil", tc.pol, tc.pw, tc.personal, err)
		}
		if !tc.ok {
			var inv *acl.InvalidError
			if !errors.As(err, &inv) || inv.Field != "password" || !errors.Is(err, acl.ErrInvalid) {
				t.Errorf("%+v.Check(%q, %q) = %v, want acl.Invalid(\"password\", …)", tc.pol, tc.pw, tc.personal, err)
			} else if strings.Contains(err.Error(), tc.pw) {
				t.Errorf("%+v.Check(%q) error %q repeats the password", tc.pol, tc.pw, err)
			}
		}
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for i := range 500 {
		pw := GeneratePassword()
		if len(pw) != 24 || strings.Count(pw, "-") != 4 {
			t.Fatalf("GeneratePassword() = %q, want five groups of four joined by -", pw)
		}
		if err := (PasswordPolicy{}).Check(pw); err != nil {
			t.Fatalf("GeneratePassword() = %q fails the default policy: %v", pw, err)
		}
		if seen[pw] {
			t.Fatalf("GeneratePassword() repeated %q after %d calls", pw, i)
		}
		seen[pw] = true
		for _, r := range strings.ReplaceAll(pw, "-", "") {
			if !strings.ContainsRune(passwordAlphabet, r) {
				t.Fatalf("GeneratePassword() = %q has %q outside the alphabet", pw, r)
			}
			counts[r]++
		}
	}
	// 10,000 draws over 56 characters: about 179 each. Every character must turn
	// up, and none wildly often (a modulo bias would show as ~2x).
	for _, r := range passwordAlphabet {
		if n := counts[r]; n < 90 || n > 300 {
			t.Errorf("character %q drawn %d times in 10000, want about 179", r, n)
		}
	}
	if len(passwordAlphabet) != 56 {
		t.Errorf("alphabet has %d characters; the doc comment says 56", len(passwordAlphabet))
	}
}
