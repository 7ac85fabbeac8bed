package pipeline

import "context"

// Fetched is one result of Prefetch: a value next produced, or the error that ended it.
type Fetched[T any] struct {
	Value T
	Err   error
}

// Prefetch calls next in a goroutine of its own and keeps one result ready ahead of the caller, so
// that the CPU work of the next batch (checking, decoding) overlaps with the caller's round trips
// for the current one (writes, commits). Results arrive in call order. After next fails the error
// is delivered and nothing more comes; an error while ctx is ending is not delivered, the channel
// just closes. stop ends the goroutine and waits for it, so a reader next uses can be closed after.
// At most two batches are in hand at once, neither committed: a crash re-reads both.
func Prefetch[T any](ctx context.Context, next func(context.Context) (T, error)) (results <-chan Fetched[T], stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan Fetched[T], 1)
	go func() {
		defer close(ch)
		for {
			v, err := next(ctx)
			if err != nil && ctx.Err() != nil {
				return
			}
			select {
			case ch <- Fetched[T]{Value: v, Err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch, func() {
		cancel()
		for range ch {
		}
	}
}
