// Package indicator drives a bay's status light: a green and a red LED (either may be absent)
// on GPIO pins, showing at a glance from across the workshop whether the bay is ready, busy
// scanning or testing, or needs attention.
//
// Pins are periph.io gpio.PinOut values, so the same code drives a Raspberry Pi header (the
// gateway resolves pin names through periph.io/x/host) and gpiotest fakes in tests.
package indicator
