package redisbroker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"caseroom/acl/pgdb/pgdbtest"
	"caseroom/chat"
	"caseroom/chat/brokertest"
	"caseroom/chat/redisbroker"
)

func mustClient(t *testing.T) *redis.Client {
	t.Helper()
	url := pgdbtest.NeedEnv(t, "CASEROOM_TEST_REDIS")
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping redis: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestBroker runs the broker suite on two nodes, each with its own Redis client,
// on a channel of the test's own.
func TestBroker(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) (a, b chat.Broker) {
		p := make([]byte, 6)
		rand.Read(p)
		prefix := "test:" + hex.EncodeToString(p) + ":"
		return redisbroker.New(mustClient(t), prefix, 0), redisbroker.New(mustClient(t), prefix, 0)
	})
}
