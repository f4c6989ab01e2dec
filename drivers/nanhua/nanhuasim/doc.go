// Package nanhuasim simulates the analyzers of drivers/nanhua (NHA-503, NHA-506(I), FLA-502,
// MQW-511) on any io.ReadWriter: it answers the model's single-byte commands with frames built
// from the model's own spec, running the petrol gas script of rigsim with warm-up, zero and
// leak-check timing and the configured faults (busy = a lone 05, as the instrument sends while
// an operation runs).
package nanhuasim
