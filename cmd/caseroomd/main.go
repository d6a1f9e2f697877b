// Command caseroomd is the caseroom server: every legal case a group chat.
//
//	caseroomd serve [-config FILE] [-demo]   run the server
//	caseroomd migrate [-config FILE]         apply pending database migrations
//	caseroomd admin COMMAND …                manage the directory from the server's console
//	caseroomd version                        print the version
//
// run, routes.go and stores.go show the whole program.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "caseroomd:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: caseroomd COMMAND [flags]

commands:
  serve     run the server (default 127.0.0.1:8080, SQLite under ./data)
  migrate   apply pending database migrations and exit
  admin     manage the directory: run "caseroomd admin help"
  version   print the version

Settings come from CASEROOM_* environment variables or a KEY=value file
(-config FILE); configs/caseroomd.conf documents each.
`

// run is the whole program; main only gives it the process's context,
// arguments, environment and output, so tests can run it too.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:], getenv, stdout, stderr)
	case "admin":
		return admin(ctx, args[1:], getenv, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "caseroomd", versionString())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		v += " " + info.GoVersion
	}
	return v
}

// commonFlags are the flags every command that opens the database takes.
func commonFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "a KEY=value settings file (see configs/caseroomd.conf)")
	return fs, file
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, file := commonFlags("migrate", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*file, getenv)
	if err != nil {
		return err
	}
	st, err := openStores(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.close()
	before, err := st.pending(ctx)
	if err != nil {
		return err
	}
	if err := st.migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "migrations: %d applied, database %s is up to date\n", before, st.kind)
	return nil
}
