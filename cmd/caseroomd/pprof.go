package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// startPprof serves net/http/pprof on the loopback address CASEROOM_PPROF
// names (e.g. 127.0.0.1:6060), for profiling under load; unset, the default,
// serves nothing. It is a debug listener of its own, never mounted on the
// API's address, and it refuses any address that is not loopback (logged as
// an error; the server runs on without it). It stops when ctx ends.
func startPprof(ctx context.Context, getenv func(string) string, log *slog.Logger) {
	addr := getenv("CASEROOM_PPROF")
	if addr == "" {
		return
	}
	if err := servePprof(ctx, addr, log); err != nil {
		log.Error("pprof not started", "err", err)
	}
}

func servePprof(ctx context.Context, addr string, log *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("CASEROOM_PPROF: %q is not host:port", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("CASEROOM_PPROF: %q is not a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("CASEROOM_PPROF: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("pprof listening", "addr", ln.Addr().String())
	return nil
}
