package cloud

import "github.com/obdgw/obdgw/buffer"

// nopOutbox is an empty outbox for option tests that never connect.
type nopOutbox struct{}

func (nopOutbox) PeekAfter(uint64, int) ([]buffer.Record, error) { return nil, nil }
func (nopOutbox) AckMany([]uint64) error                         { return nil }
func (nopOutbox) MarkAttempts([]uint64) error                    { return nil }
func (nopOutbox) DeadLetter(uint64, string) error                { return nil }
func (nopOutbox) Stats() buffer.Stats                            { return buffer.Stats{} }
func (nopOutbox) Appended() <-chan struct{}                      { return nil }
