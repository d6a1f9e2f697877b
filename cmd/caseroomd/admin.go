package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"caseroom/acl"
	"caseroom/acl/token"
)

const adminUsage = `usage: caseroomd admin COMMAND [flags]

Run on the server itself; actions are audited as the "console" subject.

commands:
  create-user    -username U -name N -unit UNIT -roles officer,leader [-password P]
                 (without -password one is generated and printed once)
  disable-user   -user ID          disable a user (their sessions end at once)
  enable-user    -user ID
  reset-password -user ID [-password P]   (generated and printed once if omitted)
  set-roles      -user ID -roles r1,r2
  unlock         -user ID
  create-unit    -kind KIND -region CODE -name NAME [-id ID] [-non-territorial]
  disable-unit   -unit ID
  import         [-regions FILE.csv] [-units FILE.csv]
                 regions: the configs/regions.csv columns; units: id,kind,region,name,non_territorial
  demo           seed demo units and users and print their passwords once
  users          [-unit UNIT]      list users
  units          list units
`

func admin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" {
		fmt.Fprint(stdout, adminUsage)
		return nil
	}
	cmd := args[0]
	fs, file := commonFlags("admin "+cmd, stderr)
	var (
		username = fs.String("username", "", "login name")
		name     = fs.String("name", "", "display name")
		unit     = fs.String("unit", "", "unit id")
		roles    = fs.String("roles", "", "comma-separated roles: "+joinRoles())
		password = fs.String("password", "", "password (generated when empty)")
		user     = fs.String("user", "", "user id")
		kind     = fs.String("kind", "", "unit kind")
		region   = fs.String("region", "", "region code")
		id       = fs.String("id", "", "unit id (derived when empty)")
		nonTerr  = fs.Bool("non-territorial", false, "a railway, forest-area or development-zone organ")
		regFile  = fs.String("regions", "", "regions CSV to import")
		unitFile = fs.String("units", "", "units CSV to import")
	)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*file, getenv)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer a.close()
	ctx = acl.WithSubject(ctx, acl.ConsoleSubject())
	d := a.dir

	switch cmd {
	case "create-user":
		u, pw, err := d.CreateUser(ctx, acl.NewUser{Username: *username, Name: *name, Unit: acl.UnitID(*unit), Roles: splitRoles(*roles), Password: *password})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created user %s (%s)\n", u.ID, u.Username)
		if pw != "" {
			fmt.Fprintf(stdout, "password (shown once): %s\n", pw)
		}
		return a.syncUnitRoom(ctx, u.Unit)
	case "disable-user", "enable-user":
		if err := d.DisableUser(ctx, acl.UserID(*user), cmd == "disable-user"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %s\n", cmd, *user)
		return nil
	case "reset-password":
		pw, err := d.ResetPassword(ctx, acl.UserID(*user), *password)
		if err != nil {
			return err
		}
		if *password == "" {
			fmt.Fprintf(stdout, "new password for %s (shown once): %s\n", *user, pw)
		} else {
			fmt.Fprintf(stdout, "password of %s reset; their sessions are revoked\n", *user)
		}
		return nil
	case "set-roles":
		_, err := d.SetRoles(ctx, acl.UserID(*user), splitRoles(*roles))
		return err
	case "unlock":
		return d.Unlock(ctx, acl.UserID(*user))
	case "create-unit":
		u, err := d.CreateUnit(ctx, acl.Unit{ID: acl.UnitID(*id), Kind: acl.UnitKind(*kind), Region: acl.RegionCode(*region), Name: *name, NonTerritorial: *nonTerr})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created unit %s (%s)\n", u.ID, u.Name)
		return nil
	case "disable-unit":
		return d.DisableUnit(ctx, acl.UnitID(*unit), true)
	case "bench-provision":
		return benchProvision(ctx, a, fs.Args(), stdout, stderr)
	case "import":
		return importDirectory(ctx, a, *regFile, *unitFile, stdout)
	case "demo":
		return seedDemo(ctx, a, stdout)
	case "users":
		us, err := d.Users(ctx, acl.UserFilter{Unit: acl.UnitID(*unit)})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSERNAME\tNAME\tUNIT\tROLES\tDISABLED")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\n", u.ID, u.Username, u.Name, u.Unit, joinRoleList(u.Roles), u.Disabled)
		}
		return tw.Flush()
	case "units":
		us, err := d.Units(ctx, acl.UnitFilter{})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tREGION\tNAME\tDISABLED")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", u.ID, u.Kind, u.Region, u.Name, u.Disabled)
		}
		return tw.Flush()
	}
	fmt.Fprint(stderr, adminUsage)
	return fmt.Errorf("admin: unknown command %q", cmd)
}

// syncUnitRoom makes the unit's unit room hold its users.
func (a *app) syncUnitRoom(ctx context.Context, id acl.UnitID) error {
	u, err := a.st.acl.Unit(ctx, id)
	if err != nil {
		return err
	}
	_, err = a.chat.EnsureUnitRoom(ctx, u, acl.ConsoleSubject())
	return err
}

// seedDemo seeds configs/demo.json and prints the generated passwords once.
func seedDemo(ctx context.Context, a *app, stdout io.Writer) error {
	ctx = acl.WithSubject(ctx, acl.ConsoleSubject())
	accounts, err := a.dir.SeedDemo(ctx, a.data, "demo.json", func() (string, error) { return token.GeneratePassword(), nil })
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	units, err := a.st.acl.Units(ctx, acl.UnitFilter{})
	if err != nil {
		return err
	}
	for _, u := range units {
		if _, err := a.chat.EnsureUnitRoom(ctx, u, acl.ConsoleSubject()); err != nil {
			return fmt.Errorf("demo: unit room of %s: %w", u.ID, err)
		}
	}
	if len(accounts) == 0 {
		fmt.Fprintln(stdout, "demo: already seeded; passwords were shown when the accounts were created")
		return nil
	}
	fmt.Fprintf(stdout, "demo: created %d accounts; their passwords are shown only now:\n", len(accounts))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tPASSWORD\tNAME\tUNIT\tROLES")
	for _, acc := range accounts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", acc.Username, acc.Password, acc.Name, acc.Unit, joinRoleList(acc.Roles))
	}
	return tw.Flush()
}

func importDirectory(ctx context.Context, a *app, regFile, unitFile string, stdout io.Writer) error {
	if regFile == "" && unitFile == "" {
		return errors.New("import: give -regions FILE, -units FILE or both")
	}
	if regFile != "" {
		rs, err := acl.LoadRegions(os.DirFS(filepath.Dir(regFile)), filepath.Base(regFile))
		if err != nil {
			return err
		}
		if err := a.dir.ImportRegions(ctx, rs); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "imported %d regions\n", len(rs))
	}
	if unitFile != "" {
		f, err := os.Open(unitFile)
		if err != nil {
			return err
		}
		defer f.Close()
		rows, err := csv.NewReader(f).ReadAll()
		if err != nil {
			return fmt.Errorf("%s: %w", unitFile, err)
		}
		if len(rows) == 0 || strings.Join(rows[0], ",") != "id,kind,region,name,non_territorial" {
			return fmt.Errorf("%s: line 1: header must be id,kind,region,name,non_territorial", unitFile)
		}
		n := 0
		for i, row := range rows[1:] {
			u := acl.Unit{ID: acl.UnitID(row[0]), Kind: acl.UnitKind(row[1]), Region: acl.RegionCode(row[2]), Name: row[3], NonTerritorial: row[4] == "true"}
			if _, err := a.st.acl.Unit(ctx, u.ID); err == nil {
				continue // already there: import is idempotent
			}
			if _, err := a.dir.CreateUnit(ctx, u); err != nil {
				return fmt.Errorf("%s: line %d: %w", unitFile, i+2, err)
			}
			n++
		}
		fmt.Fprintf(stdout, "imported %d units\n", n)
	}
	return nil
}

func splitRoles(s string) []acl.Role {
	var out []acl.Role
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, acl.Role(p))
		}
	}
	return out
}

func joinRoleList(rs []acl.Role) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = string(r)
	}
	return strings.Join(parts, ",")
}

func joinRoles() string { return joinRoleList(acl.Roles) }

var _ = flag.ErrHelp
