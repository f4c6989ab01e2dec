// Package emissiontest holds fakes for testing the emission procedures without hardware: a
// scripted rig (with optional zeroing), the error shapes drivers return (busy, checksum,
// unplugged), and an operator who follows the procedure's prompts by setting engine speed.
// Under testing/synctest their delays run on the bubble's fake clock.
package emissiontest
