package membroker_test

import (
	"testing"

	"caseroom/chat"
	"caseroom/chat/brokertest"
	"caseroom/chat/membroker"
)

func TestBroker(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) (a, b chat.Broker) {
		br := membroker.New(0)
		return br, br // one process: both "nodes" share the broker
	})
}
