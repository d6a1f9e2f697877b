package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"caseroom/acl"
	"caseroom/casework/bots"
)

// DeadlineBot is the user id of the deadline bot, the bot principal that posts
// reminders and escalations (issue 5). It belongs to the root committee.
const DeadlineBot acl.UserID = "deadline-bot"

// newBots builds the deadline bot's scheduler, the due lists and the bot
// platform, and loads configs/reminders.json (validated against the clocks).
func (a *app) newBots(ctx context.Context, regions []acl.Region, log *slog.Logger) error {
	rem, err := bots.LoadReminders(a.data, "reminders.json", a.domain)
	if err != nil {
		return err
	}
	src := bots.NewCaseClocks(a.st.cases, a.st.chat, a.domain, regions, log)
	bot, err := a.deadlineBot(ctx)
	if err != nil {
		return err
	}
	// The scheduler's source also posts what a clock's expiry performs (a
	// judgment becoming effective) through the case service, as the bot.
	a.scheduler = bots.NewScheduler(bots.NewTimedClocks(src, a.cases), a.chat, a.st.acl, a.st.bots, rem, a.domain.Clocks, bot, a.now, log, bots.SchedulerOptions{})
	a.due = bots.NewDue(src, a.guard, regions, a.now)
	a.platform = bots.NewPlatform(a.st.bots, a.st.acl, a.guard, a.chat, a.registry, a.due, a.now, log,
		bots.PlatformOptions{CheckBot: a.auth.CheckSession})
	return nil
}

// deadlineBot returns the deadline bot's subject, creating its user (a bot, no
// password) at the root committee the first time that unit exists, so the
// record names it. Before the directory has that unit the bot acts unnamed.
func (a *app) deadlineBot(ctx context.Context) (acl.Subject, error) {
	s := acl.Subject{User: DeadlineBot, Name: "期限提醒机器人", Bot: true, UnitKind: acl.Committee, Region: acl.RootRegion}
	unit, err := a.st.acl.Unit(ctx, acl.UnitID(string(acl.RootRegion)+"-committee"))
	if errors.Is(err, acl.ErrNotFound) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	s.Unit = unit.ID
	if _, err := a.st.acl.User(ctx, DeadlineBot); errors.Is(err, acl.ErrNotFound) {
		u := acl.User{ID: DeadlineBot, Username: string(DeadlineBot), Name: s.Name, Unit: unit.ID, Bot: true, CreatedAt: a.now()}
		rec := systemRecord("user.create", "user:"+string(DeadlineBot), `{"bot":true}`, a.now())
		if err := a.st.acl.CreateUser(ctx, u, "", rec); err != nil && !errors.Is(err, acl.ErrExists) {
			return s, err
		}
	} else if err != nil {
		return s, err
	}
	return s, nil
}

// background starts the node's background work: case projections following
// the broker, the deadline bot (every minute; exactly once per reminder whatever
// the other nodes do) and webhook deliveries.
func (a *app) background(ctx context.Context) {
	go func() {
		if err := a.cases.Run(ctx, a.broker); err != nil {
			a.log.Error("case sync stopped", "err", err)
		}
	}()
	go func() {
		if err := a.scheduler.Run(ctx, time.Minute); err != nil && ctx.Err() == nil {
			a.log.Error("deadline bot stopped", "err", err)
		}
	}()
	go func() {
		d := bots.NewDispatcher(a.platform, a.now, a.log.With("pkg", "webhooks"), bots.DispatcherOptions{})
		if err := d.Run(ctx, 10*time.Second); err != nil && ctx.Err() == nil {
			a.log.Error("webhook dispatcher stopped", "err", err)
		}
	}()
}
