package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is what caseroomd reads at start. Every field has a working default, so
// `caseroomd serve` with nothing set runs one node on SQLite under ./data.
// Settings come from CASEROOM_* environment variables or from a file of the
// same KEY=value lines (configs/caseroomd.conf documents each); the environment wins.
type Config struct {
	Addr          string        `env:"CASEROOM_ADDR"`               // listen address, default 127.0.0.1:8080
	Database      string        `env:"CASEROOM_DATABASE"`           // "sqlite:data/caseroom.db" (default) or a postgres:// URL
	Redis         string        `env:"CASEROOM_REDIS"`              // empty: the in-process broker, one node only
	Configs       string        `env:"CASEROOM_CONFIGS"`            // a directory replacing the embedded configs/
	LogLevel      string        `env:"CASEROOM_LOG_LEVEL"`          // debug, info (default), warn, error
	LogFormat     string        `env:"CASEROOM_LOG_FORMAT"`         // text (default) or json
	Origins       []string      `env:"CASEROOM_ORIGINS"`            // extra WebSocket origin host patterns
	AccessTTL     time.Duration `env:"CASEROOM_ACCESS_TTL"`         // default 10m
	RefreshTTL    time.Duration `env:"CASEROOM_REFRESH_TTL"`        // default 168h
	MaxFailures   int           `env:"CASEROOM_LOGIN_MAX_FAILURES"` // default 5
	LockFor       time.Duration `env:"CASEROOM_LOGIN_LOCK"`         // default 15m
	MaxText       int           `env:"CASEROOM_MAX_TEXT"`           // default 16384 bytes
	MaxUpload     int64         `env:"CASEROOM_MAX_UPLOAD"`         // default 50 MiB
	PostRate      float64       `env:"CASEROOM_POST_RATE"`          // posts per second per user, default 20
	ShutdownGrace time.Duration `env:"CASEROOM_SHUTDOWN_GRACE"`     // default 10s
	// Argon2Memory is argon2id's memory in KiB (default 19456); tests lower it.
	Argon2Memory uint32 `env:"CASEROOM_ARGON2_MEMORY"`
}

func defaultConfig() Config {
	return Config{
		Addr:          "127.0.0.1:8080",
		Database:      "sqlite:data/caseroom.db",
		LogLevel:      "info",
		LogFormat:     "text",
		AccessTTL:     10 * time.Minute,
		RefreshTTL:    7 * 24 * time.Hour,
		MaxFailures:   5,
		LockFor:       15 * time.Minute,
		MaxText:       16 << 10,
		MaxUpload:     50 << 20,
		PostRate:      20,
		ShutdownGrace: 10 * time.Second,
		Argon2Memory:  19456,
	}
}

// loadConfig reads the defaults, then the file (if named), then the
// environment. A bad setting stops the start with its name and what is wrong.
func loadConfig(file string, getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	if file == "" {
		file = getenv("CASEROOM_CONFIG_FILE")
	}
	values := map[string]string{}
	if file != "" {
		fv, err := readConfigFile(file)
		if err != nil {
			return Config{}, err
		}
		values = fv
	}
	v := reflect.ValueOf(&cfg).Elem()
	known := map[string]bool{"CASEROOM_CONFIG_FILE": true}
	for i := 0; i < v.NumField(); i++ {
		key := v.Type().Field(i).Tag.Get("env")
		known[key] = true
		s, ok := values[key]
		if e := getenv(key); e != "" {
			s, ok = e, true
		}
		if !ok {
			continue
		}
		if err := setField(v.Field(i), strings.TrimSpace(s)); err != nil {
			return Config{}, fmt.Errorf("config: %s=%q: %w", key, s, err)
		}
	}
	for key := range values {
		if !known[key] {
			return Config{}, fmt.Errorf("config: %s: unknown setting %s (see configs/caseroomd.conf)", file, key)
		}
	}
	return cfg, cfg.validate()
}

func readConfigFile(name string) (map[string]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("config: %s:%d: want KEY=value", name, n)
		}
		if i := strings.Index(val, " #"); i >= 0 {
			val = val[:i]
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return out, sc.Err()
}

func setField(f reflect.Value, s string) error {
	switch f.Interface().(type) {
	case string:
		f.SetString(s)
	case []string:
		var list []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				list = append(list, p)
			}
		}
		f.Set(reflect.ValueOf(list))
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration like 15m or 168h")
		}
		f.SetInt(int64(d))
	case int, int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not a whole number")
		}
		f.SetInt(n)
	case uint32:
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return fmt.Errorf("not a whole number")
		}
		f.SetUint(n)
	case float64:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		f.SetFloat(n)
	default:
		return fmt.Errorf("unsupported setting type %s", f.Type())
	}
	return nil
}

func (c Config) validate() error {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("CASEROOM_ADDR", "%q is not host:port", c.Addr)
	}
	switch {
	case strings.HasPrefix(c.Database, "sqlite:"):
		if strings.TrimPrefix(c.Database, "sqlite:") == "" {
			bad("CASEROOM_DATABASE", "sqlite: needs a file path, e.g. sqlite:data/caseroom.db")
		}
	case strings.HasPrefix(c.Database, "postgres://"), strings.HasPrefix(c.Database, "postgresql://"):
	default:
		bad("CASEROOM_DATABASE", "%q is neither sqlite:PATH nor a postgres:// URL", c.Database)
	}
	if c.Redis != "" && !strings.HasPrefix(c.Redis, "redis://") && !strings.HasPrefix(c.Redis, "rediss://") {
		bad("CASEROOM_REDIS", "%q is not a redis:// URL", c.Redis)
	}
	if c.Configs != "" {
		if st, err := os.Stat(c.Configs); err != nil || !st.IsDir() {
			bad("CASEROOM_CONFIGS", "%q is not a directory", c.Configs)
		}
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		bad("CASEROOM_LOG_LEVEL", "%v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("CASEROOM_LOG_FORMAT", "%q is neither text nor json", c.LogFormat)
	}
	if c.AccessTTL < time.Minute || c.AccessTTL > 24*time.Hour {
		bad("CASEROOM_ACCESS_TTL", "must be between 1m and 24h")
	}
	if c.RefreshTTL < c.AccessTTL {
		bad("CASEROOM_REFRESH_TTL", "must not be shorter than CASEROOM_ACCESS_TTL")
	}
	if c.MaxFailures < 1 {
		bad("CASEROOM_LOGIN_MAX_FAILURES", "must be at least 1")
	}
	if c.LockFor <= 0 {
		bad("CASEROOM_LOGIN_LOCK", "must be positive")
	}
	if c.MaxText < 1 || c.MaxText > 1<<20 {
		bad("CASEROOM_MAX_TEXT", "must be between 1 and 1048576 bytes")
	}
	if c.MaxUpload < 1 {
		bad("CASEROOM_MAX_UPLOAD", "must be positive")
	}
	if c.PostRate <= 0 {
		bad("CASEROOM_POST_RATE", "must be positive")
	}
	if c.ShutdownGrace < 0 {
		bad("CASEROOM_SHUTDOWN_GRACE", "must not be negative")
	}
	if c.Argon2Memory < 8 {
		bad("CASEROOM_ARGON2_MEMORY", "must be at least 8 KiB")
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}
