// Package frame holds what the rig driver packages share: the three checksum rules of the
// emission-rig protocols (SUM, 2C, INV), big-endian word helpers, and Link, which runs one
// request/reply exchange on a port the way every rig protocol needs it — purge stale input,
// write the request, read exactly the expected number of bytes before a deadline — and turns
// timeouts and port failures into rig.ErrNoReply / rig.ErrLinkLost with a hint for the user.
//
// Framing itself (lead bytes, lengths, field lists) stays in the family packages: the families
// look alike but differ in exactly the places that matter.
package frame
