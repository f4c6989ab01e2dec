package rig

import (
	"errors"
	"fmt"
)

// Errors a rig driver returns. Drivers wrap these (errors.Is) or return the typed errors below
// (errors.As), so a procedure can decide what to do without knowing the brand.
var (
	// ErrBusy: the instrument answered but is still running an operation (zeroing, calibrating,
	// leak check). Ask again later; it is not a fault of the link.
	ErrBusy = errors.New("rig: instrument busy")
	// ErrNoReply: nothing came back within the request's deadline (wrong baud rate or model,
	// cable unplugged, instrument off).
	ErrNoReply = errors.New("rig: no reply")
	// ErrLinkLost: the port failed or was closed under the driver (USB adapter unplugged).
	ErrLinkLost = errors.New("rig: link lost")
	// ErrUnsupported: the model has no such command.
	ErrUnsupported = errors.New("rig: not supported by this model")
)

// ChecksumError is a frame whose checksum does not match. Frame is the whole raw frame.
type ChecksumError struct {
	Model     string
	Frame     []byte
	Want, Got byte // Want is computed from the frame, Got is the byte the instrument sent
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("rig: %s: checksum mismatch: computed %02X, frame has %02X (frame % X)", e.Model, e.Want, e.Got, e.Frame)
}

// NAKError is a negative acknowledge from the instrument (first byte 15 hex). Code is the error
// code that some families send after it (opacimeters), or -1 when the family sends none.
type NAKError struct {
	Model string
	Code  int
	Frame []byte
}

func (e *NAKError) Error() string {
	if e.Code < 0 {
		return fmt.Sprintf("rig: %s: command refused (NAK, frame % X)", e.Model, e.Frame)
	}
	return fmt.Sprintf("rig: %s: command refused (NAK code %02X, frame % X)", e.Model, e.Code, e.Frame)
}

// ShortFrameError is a reply that stopped before its expected length (deadline or link loss).
// Err is the read error that ended it.
type ShortFrameError struct {
	Model string
	Frame []byte
	Want  int
	Err   error
}

func (e *ShortFrameError) Error() string {
	return fmt.Sprintf("rig: %s: short reply: %d of %d bytes (% X): %v", e.Model, len(e.Frame), e.Want, e.Frame, e.Err)
}

func (e *ShortFrameError) Unwrap() error { return e.Err }

// FrameError is a reply with the right length but an impossible shape (wrong lead byte, wrong
// echo, a field that does not parse).
type FrameError struct {
	Model  string
	Frame  []byte
	Reason string
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("rig: %s: bad frame: %s (% X)", e.Model, e.Reason, e.Frame)
}

// BusyError is a busy reply (ErrBusy) with the raw bytes that said so, which on Nanhua
// analyzers carry the process data of the running operation.
type BusyError struct {
	Model string
	Frame []byte
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("rig: %s: instrument busy, try again when the running operation ends (% X)", e.Model, e.Frame)
}

// Is makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }
