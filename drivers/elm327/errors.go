package elm327

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/obdgw/obdgw/obd"
)

// Code classifies the adapter's own error strings (ELM327DSJ pp.87–89 and clone chatter).
type Code int

// Adapter error codes.
const (
	CodeNoData          Code = iota + 1 // NO DATA: no ECU answered (an answer: wraps obd.ErrNoData)
	CodeUnableToConnect                 // UNABLE TO CONNECT, clone NOT CONNECTED: wraps obd.ErrNoVehicle
	CodeCANError                        // CAN ERROR
	CodeBusInitError                    // BUS INIT: ...ERROR
	CodeBusBusy                         // BUS BUSY
	CodeBusError                        // BUS ERROR
	CodeFBError                         // FB ERROR
	CodeDataError                       // DATA ERROR, <DATA ERROR
	CodeRxError                         // <RX ERROR
	CodeBufferFull                      // BUFFER FULL
	CodeStopped                         // STOPPED
	CodeUnknownCommand                  // ? (also clone ?WRONG HEXCHAR COUNT)
	CodeInternal                        // ERRnn
	CodeLowVoltageReset                 // LV RESET
	CodeLowPowerAlert                   // ACT ALERT, LP ALERT
)

var codeInfo = map[Code]struct{ name, advice string }{
	CodeNoData:          {"no data", "no ECU answered: the service or PID is not supported, or the ignition is off"},
	CodeUnableToConnect: {"unable to connect", "no protocol found: is the ignition on and the adapter seated in the OBD socket? check the supply voltage"},
	CodeCANError:        {"can error", "CAN trouble: check the adapter is fully seated and the wiring; a wrong protocol or bit rate also causes it"},
	CodeBusInitError:    {"bus init error", "the K-line wake-up failed: is the ignition on? some cars need the engine running"},
	CodeBusBusy:         {"bus busy", "too much bus traffic or a short on the data line: check the wiring"},
	CodeBusError:        {"bus error", "a bus fault (wiring, short or a bad adapter): check the connector"},
	CodeFBError:         {"feedback error", "the adapter does not hear its own transmission: check the wiring and the adapter"},
	CodeDataError:       {"data error", "a garbled or checksum-failed frame: check the connector; the request may be repeated"},
	CodeRxError:         {"rx error", "CAN receive errors: wrong bit rate or protocol; reset the adapter"},
	CodeBufferFull:      {"buffer full", "the link to the adapter is too slow: raise the baud rate"},
	CodeStopped:         {"stopped", "the command was interrupted by a byte sent too early"},
	CodeUnknownCommand:  {"command not understood", "the adapter rejected the command: unsupported by this adapter, or a wrong baud rate garbles it"},
	CodeInternal:        {"internal error", "the adapter reported an internal error: it will be reset"},
	CodeLowVoltageReset: {"low voltage reset", "the adapter browned out and reset: check the socket's power pins (16 and 4/5)"},
	CodeLowPowerAlert:   {"low power alert", "the adapter is about to sleep: it will be re-initialised"},
}

func (c Code) String() string {
	if i, ok := codeInfo[c]; ok {
		return i.name
	}
	return "unknown"
}

// Error is an error string the adapter printed instead of (or among) data. It keeps the raw
// reply and says what to check.
type Error struct {
	Code    Code
	Command string // the command sent, "0100"
	Raw     string // the adapter's reply, as received (NULs removed)
	Advice  string // what the user should check
	err     error  // sentinel it stands for (obd.ErrNoData, obd.ErrNoVehicle) or nil
}

func (e *Error) Error() string {
	s := "elm327: "
	if e.Command != "" {
		s += e.Command + ": "
	}
	s += e.Code.String()
	if line := firstErrorLine(e.Raw); line != "" && !strings.EqualFold(strings.ReplaceAll(line, " ", ""), strings.ReplaceAll(e.Code.String(), " ", "")) {
		s += " (" + escape(line, 60) + ")"
	}
	if e.Advice != "" {
		s += ": " + e.Advice
	}
	return s
}

// Unwrap returns obd.ErrNoData for NO DATA and obd.ErrNoVehicle for UNABLE TO CONNECT.
func (e *Error) Unwrap() error { return e.err }

func newError(c Code, cmd, raw string) *Error {
	e := &Error{Code: c, Command: cmd, Raw: raw, Advice: codeInfo[c].advice}
	switch c {
	case CodeNoData:
		e.err = obd.ErrNoData
	case CodeUnableToConnect:
		e.err = obd.ErrNoVehicle
	}
	return e
}

// noVehicle turns a NO DATA at connect time into "no vehicle": when not even 0100 gets an
// answer, nothing is listening.
func noVehicle(e *Error) *Error {
	c := *e
	c.err = obd.ErrNoVehicle
	c.Advice = "no ECU answered 0100: is the ignition on and the adapter seated in the OBD socket?"
	return &c
}

func firstErrorLine(raw string) string {
	for _, l := range strings.FieldsFunc(raw, func(r rune) bool { return r == '\r' || r == '\n' }) {
		l = strings.TrimSpace(l)
		if l != "" && classify(normalise(l)) != 0 {
			return l
		}
	}
	return ""
}

// escape shows adapter output in an error or log line: cut to n bytes, and every control
// character, NUL, DEL, escape sequence and invalid byte written as Go escapes it (\x1b, \r,
// \x00), so a clone's garbage cannot move a terminal's cursor or forge a log line.
func escape(s string, n int) string {
	q := quoteRaw(s, n)
	return q[1 : len(q)-1]
}

// quoteRaw is escape in double quotes.
func quoteRaw(s string, n int) string {
	cut := ""
	if len(s) > n {
		s, cut = s[:n], "…"
	}
	q := strconv.Quote(s)
	return q[:len(q)-1] + cut + `"`
}

var errNN = regexp.MustCompile(`^ERR[0-9A-F]{2}$`)

// normalise removes spaces and upper-cases a line, so that matching survives ATS0 and
// truncated lines (the approach of ObdMetrics and AndrOBD).
func normalise(line string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(line), " ", ""))
}

// classify returns the error code of a normalised line, or 0 when it is not an error string.
func classify(n string) Code {
	switch {
	case n == "":
		return 0
	case strings.Contains(n, "NODATA"):
		return CodeNoData
	case strings.Contains(n, "UNABLETOCONNECT"), strings.Contains(n, "NOTCONNECTED"):
		return CodeUnableToConnect
	case strings.HasPrefix(n, "BUSINIT"):
		if strings.Contains(n, "ERROR") {
			return CodeBusInitError
		}
		return 0 // progress
	case strings.Contains(n, "CANERROR"):
		return CodeCANError
	case strings.Contains(n, "BUSBUSY"):
		return CodeBusBusy
	case strings.Contains(n, "BUSERROR"):
		return CodeBusError
	case strings.Contains(n, "FBERROR"):
		return CodeFBError
	case strings.Contains(n, "RXERROR"):
		return CodeRxError
	case strings.Contains(n, "DATAERROR"):
		return CodeDataError
	case strings.Contains(n, "BUFFERFULL"):
		return CodeBufferFull
	case strings.Contains(n, "STOPPED"):
		return CodeStopped
	case strings.HasPrefix(n, "?"):
		return CodeUnknownCommand
	case errNN.MatchString(n):
		return CodeInternal
	case strings.Contains(n, "LVRESET"):
		return CodeLowVoltageReset
	case strings.Contains(n, "ACTALERT"), strings.Contains(n, "LPALERT"):
		return CodeLowPowerAlert
	}
	return 0
}

// TimeoutError is a command that got no prompt before its deadline. It keeps what did arrive
// and wraps os.ErrDeadlineExceeded.
type TimeoutError struct {
	Command string
	Raw     string
}

func (e *TimeoutError) Error() string {
	s := "elm327: " + e.Command + ": no prompt before the deadline"
	switch p := countProgress([]byte(e.Raw)); {
	case p > 1:
		s += fmt.Sprintf(" (the adapter kept searching, %d× SEARCHING... or BUS INIT:, and found no protocol; got %s)", p, strconvQuoteRaw(e.Raw))
	case e.Raw != "" && !cleanText([]byte(e.Raw)):
		s += " (got noise " + strconvQuoteRaw(e.Raw) + ": the baud rate is probably wrong)"
	case e.Raw != "":
		s += " (got " + strconvQuoteRaw(e.Raw) + ")"
	default:
		s += " (nothing received: is the adapter powered and the baud rate right?)"
	}
	return s
}

func (e *TimeoutError) Unwrap() error { return os.ErrDeadlineExceeded }

func strconvQuoteRaw(s string) string { return quoteRaw(s, 80) }

// FrameError is an answer the parser could not make sense of: a malformed line, an ISO-TP
// sequence gap or an incomplete multi-frame message. It keeps the offending line.
type FrameError struct {
	Command string
	Line    string
	Reason  string
}

func (e *FrameError) Error() string {
	s := "elm327: "
	if e.Command != "" {
		s += e.Command + ": "
	}
	return s + e.Reason + " in " + strconvQuoteRaw(e.Line)
}

// ErrDisconnected is returned for the request during which the link to the adapter broke
// (USB unplugged, Bluetooth dropped), and for a request made while the link is down and
// reopening it failed. The adapter has been reopened when possible; the next request can
// proceed. It is obd.ErrAdapterLost to errors.Is.
var ErrDisconnected error = disconnected{}

type disconnected struct{}

func (disconnected) Error() string        { return "elm327: connection to the adapter lost" }
func (disconnected) Is(target error) bool { return target == obd.ErrAdapterLost }

// OverflowError is an answer that ran past MaxReply bytes without a prompt: an adapter
// babbling or flooding the line. The request fails and the link is reset (it is a failure
// of the link, ErrDisconnected to the caller).
type OverflowError struct {
	Command string
	Raw     string // the first bytes of it
}

func (e *OverflowError) Error() string {
	return fmt.Sprintf("elm327: %s: the adapter sent more than %d bytes without a prompt (it began %s): the link is reset", e.Command, MaxReply, strconvQuoteRaw(e.Raw))
}

// MaxReply is the most the driver reads of one answer before its prompt. An adapter that
// sends more (a babbling clone, a flood of frames) fails the request and the link is reset.
const MaxReply = 8 << 10

// ErrConnectTimeout is the connect running out of its overall deadline
// (Options.ConnectTimeout).
var ErrConnectTimeout = errors.New("elm327: the connect did not finish in time")
