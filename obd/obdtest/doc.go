// Package obdtest holds test doubles for code that talks to a car through obd.Adapter.
//
// Playback answers a fixed script of request → responses, in order, like periph's
// conntest.Playback: a test reads like the transcript of a real session, and any request the
// script does not expect (a wrong order, an extra or missing request) fails the test. The
// helpers build responses from hex written as in the ELM327 datasheet, including headers-on
// CAN frames that are reassembled the way an adapter would.
package obdtest
