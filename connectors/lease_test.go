package connectors_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/internal/pgtest"
)

func TestLeaseOneHolderAndHandOver(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, connectors.Migrations())
	log := slog.New(slog.DiscardHandler)
	a := connectors.NewLease(db.Pool, "connectors", "host-a:1", 300*time.Millisecond, log)
	b := connectors.NewLease(db.Pool, "connectors", "host-b:2", 300*time.Millisecond, log)

	var running atomic.Int32
	var ran atomic.Value
	work := func(name string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			require.Equal(t, int32(1), running.Add(1), "two holders at once")
			ran.Store(name)
			<-ctx.Done()
			running.Add(-1)
			return nil
		}
	}
	actx, stopA := context.WithCancel(context.Background())
	aDone := make(chan error, 1)
	go func() { aDone <- a.Hold(actx, work("a")) }()
	require.Eventually(t, func() bool { return ran.Load() == "a" }, 5*time.Second, 10*time.Millisecond)

	bctx, stopB := context.WithCancel(context.Background())
	defer stopB()
	bDone := make(chan error, 1)
	go func() { bDone <- b.Hold(bctx, work("b")) }()
	time.Sleep(time.Second) // b waits: a renews
	require.Equal(t, "a", ran.Load())

	stopA() // a stops (a clean shutdown releases the lease at once)
	require.NoError(t, <-aDone)
	require.Eventually(t, func() bool { return ran.Load() == "b" }, 5*time.Second, 10*time.Millisecond)
	stopB()
	require.NoError(t, <-bDone)
}

func TestLeaseExpiresWhenTheHolderDies(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, connectors.Migrations())
	ctx := context.Background()
	dead := connectors.NewLease(db.Pool, "connectors", "dead:1", 200*time.Millisecond, nil)
	epoch, ok, err := dead.TryAcquire(ctx) // then never renews, like a killed process
	require.NoError(t, err)
	require.True(t, ok)

	next := connectors.NewLease(db.Pool, "connectors", "next:2", 200*time.Millisecond, nil)
	_, ok, err = next.TryAcquire(ctx)
	require.NoError(t, err)
	require.False(t, ok, "the lease is held until it expires")
	require.Eventually(t, func() bool {
		e, ok, err := next.TryAcquire(ctx)
		return err == nil && ok && e == epoch+1
	}, 5*time.Second, 20*time.Millisecond, "after expiry another holder takes it, at the next epoch")
}
