package frame

// Unverified handles replies whose checksum rule is only assumed (MQW-511, FTY-100: the public
// drivers never check it). A mismatch may be line noise or a unit whose rule differs, so the
// reply is not dropped: the driver asks once more (noise goes away) and keeps what comes, so a
// unit with another rule still reads; after MaxRetries mismatches in a row it stops asking
// twice. The zero value is ready to use; it belongs to one instrument.
type Unverified struct {
	run int // consecutive replies kept with a mismatching checksum
}

// MaxRetries is how many mismatching replies in a row are asked for again.
const MaxRetries = 3

// Keep returns the reply to use. ok reports whether a reply's checksum matched; again reads a
// fresh reply. kept is true when the returned reply's checksum did not match (the caller logs
// it and flags the reading).
func Keep[T any](u *Unverified, first T, ok func(T) bool, again func() (T, error)) (reply T, kept bool) {
	reply = first
	if !ok(reply) && u.run < MaxRetries {
		if r, err := again(); err == nil {
			reply = r
		}
	}
	if ok(reply) {
		u.run = 0
		return reply, false
	}
	u.run++
	return reply, true
}
