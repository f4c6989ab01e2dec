package elm327

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/obdgw/obdgw/obd"
)

// The connect sequence, as an ordered list of named steps run by one loop (initialise).
// Each step says what it sends, how long the adapter has to answer, which failures end the
// connect and what its answer means; a step that fails without ending the connect costs a
// capability (the count digit, aggressive timing, headers) and may be a sign of a clone.

// initStep is one step of the connect sequence.
type initStep struct {
	// name is for people: errors and Options.InitProgress say it ("echo off").
	name string
	// send is the command, from what earlier steps found; nil sends nothing (the step
	// reads what an earlier one received).
	send func(a *Adapter, s *initState) string
	// when says whether the step runs; nil: always.
	when func(a *Adapter, s *initState) bool
	// wait is the deadline for the answer; nil: Options.ATTimeout.
	wait func(o *Options) time.Duration
	// firm, when set, is the deadline instead of wait, and a firm one: progress lines
	// (SEARCHING..., BUS INIT:) do not extend it.
	firm func(a *Adapter, s *initState) time.Duration
	// fatal says which failures of the exchange end the connect; the others go to accept.
	fatal fatality
	// accept reads the answer into the adapter and s. A degraded error costs a capability
	// (its text, when there is one, is a sign of a clone); any other error ends the connect.
	accept func(a *Adapter, s *initState, r stepReply) error
}

// stepReply is what a step's command drew: the cleaned lines, or a failure that does not
// end the connect (see fatality).
type stepReply struct {
	cmd   string
	lines []string
	err   error
}

// fatality is which failures of a step's exchange end the connect.
type fatality int

const (
	// failLink: only a broken link or a cancelled connect; an adapter that gives no
	// answer or a wrong one has only lost a capability.
	failLink fatality = iota
	// failSilent: also an adapter that sends nothing at all before the deadline (not an
	// adapter at this rate, or unpowered); an answer without OK is a refusal.
	failSilent
	// failAny: any failure; the connect cannot go on without this answer.
	failAny
)

func (f fatality) ends(ctx context.Context, err error) bool {
	if isLinkError(err) || ctx.Err() != nil || f == failAny {
		return true
	}
	var te *TimeoutError
	return f == failSilent && errors.As(err, &te) && te.Raw == ""
}

// degraded is a step's failure that costs a capability but not the connect. Its text, when
// not empty, is a sign that the adapter is a clone.
type degraded string

func (d degraded) Error() string { return "elm327: degraded: " + string(d) }

// initState is what the steps found so far, for the steps after them.
type initState struct {
	prof    obd.Profile
	clone   []string // signs of a clone, for the log
	banner  string   // ATZ's banner
	search  []string // the protocol search's 0100 answer, parsed once the protocol is known
	first   reply    // that answer
	works   bool     // the count digit works (the last count-digit probe proved it)
	refused bool     // the adapter refused the count digit with an error string
	keepAT2 bool     // 0100 without the digit brought every ECU under ATAT2
	relaxed bool     // back to ATAT1 after the count-digit probe failed under ATAT2

	// The quick connect (quickSet, quickAnswer, quickStop).
	remembered string   // the protocol to try first: the last connect's, else Options.Protocol
	tried      []string // protocols tried directly so far
	trying     string   // the protocol set for the 0100 of the step under way
	quick      string   // the protocol a direct try proved; "" until one did
	dirty      bool     // a direct try changed the adapter's protocol: close it before the search
	stuck      bool     // the last direct try's 0100 drew no prompt: interrupt the adapter
	err94      bool     // a direct try drew ERR94: CAN is out of the search until ATFE
}

// initSteps is the connect sequence. Resync with "7F7F" (a bare CR would repeat the last
// command), reset, set the output format and adaptive timing; the quick connect (protocols
// tried directly); only when none answered, the automatic protocol (ATSP0); the supply
// voltage; the search's first 0100 when it runs; then protocol, version and STN probes; then what
// the adapter can do: the count digit (under ATAT2 on CAN, which proves the aggressive
// timing as well) and multi-PID requests.
var initSteps = []initStep{
	{name: "resync", send: fixed("7F7F"), fatal: failLink, accept: acceptResync},
	// The first line may be junk from a baud probe; the banner is found among the lines.
	{name: "reset", send: fixed("ATZ"), wait: func(o *Options) time.Duration { return o.ResetTimeout }, fatal: failAny, accept: acceptBanner},
	// Echo is still on for ATE0 (the answer may carry it). Clones answer oddly ("ATH0OK",
	// split replies): any answer containing OK will do, and a refusal is tolerated because
	// the parser reads every format.
	{name: "echo off", send: fixed("ATE0"), fatal: failSilent, accept: wantOK(true, nil)},
	{name: "linefeeds off", send: fixed("ATL0"), fatal: failSilent, accept: wantOK(true, nil)},
	{name: "spaces off", send: fixed("ATS0"), fatal: failSilent, accept: wantOK(true, nil)},
	{name: "headers on", send: fixed("ATH1"), fatal: failSilent, accept: wantOK(true, func(a *Adapter, _ *initState) { a.f.headers = true })},
	// ATAT1 first, so the search's 0100 hears every ECU; ATAT2 comes once the ECUs are known.
	{name: "adaptive timing", send: fixed("ATAT1"), fatal: failSilent, accept: wantOK(true, func(a *Adapter, _ *initState) { a.timing = 1 })},
	quickSet("remembered protocol", func(_ *Adapter, s *initState) string { return s.remembered }),
	quickAnswer("remembered protocol"), quickStop("remembered protocol"),
	quickSet("CAN 11/500", quickProtocol("6")), quickAnswer("CAN 11/500"), quickStop("CAN 11/500"),
	quickSet("CAN 29/500", quickProtocol("7")), quickAnswer("CAN 29/500"), quickStop("CAN 29/500"),
	// No direct try proved a protocol: the automatic search, from a closed protocol.
	{name: "close the protocol", send: fixed("ATPC"), when: func(_ *Adapter, s *initState) bool { return s.quick == "" && s.dirty },
		fatal: failSilent, accept: wantOK(false, nil)},
	// After ERR94 (a fatal CAN error, which a CAN try at the wrong rate may draw) the
	// adapter leaves the CAN protocols out of its search until ATFE (elm327-obd.md §4).
	{name: "forget the CAN error", send: fixed("ATFE"), when: func(_ *Adapter, s *initState) bool { return s.quick == "" && s.err94 },
		fatal: failSilent, accept: wantOK(false, nil)},
	{name: "protocol", send: fixed("ATSP0"), when: searching, fatal: failSilent, accept: wantOK(true, nil)},
	// Clones may answer "12.1" or nothing.
	{name: "supply voltage", send: fixed("ATRV"), fatal: failLink, accept: acceptVoltage},
	// SEARCHING... and BUS INIT: extend the deadline (readPrompt).
	{name: "protocol search", send: fixed("0100"), when: searching, wait: func(o *Options) time.Duration { return o.SearchTimeout }, fatal: failLink, accept: acceptSearch},
	{name: "protocol number", send: fixed("ATDPN"), fatal: failLink, accept: acceptProtocolNum},
	// The search's 0100 answer is parsed now that the protocol is known.
	{name: "vehicle answer", accept: acceptVehicle},
	{name: "protocol name", send: fixed("ATDP"), fatal: failLink, accept: acceptProtocolName},
	{name: "version", send: fixed("ATI"), fatal: failLink, accept: acceptVersion},
	{name: "STN version", send: fixed("STI"), fatal: failLink, accept: acceptSTN},
	// On CAN the count-digit probe also proves aggressive adaptive timing: every ECU that
	// answered the patient search must still make it in time.
	{name: "aggressive timing", send: fixed("ATAT2"), when: func(a *Adapter, _ *initState) bool { return a.f.can() && a.timing == 1 },
		fatal: failSilent, accept: wantOK(false, func(a *Adapter, _ *initState) { a.timing = 2 })},
	{name: "count digit", send: probeCmd, wait: queryWait, fatal: failLink, accept: acceptProbe},
	// The digit refused under ATAT2: ATAT1 would change nothing there. Without the digit
	// every request waits out the timeout, so ATAT2 saves the most: 0100 without a digit
	// must still bring every ECU.
	{name: "aggressive timing without the count digit", send: fixed("0100"), wait: queryWait, fatal: failLink,
		when:   func(a *Adapter, s *initState) bool { return !s.works && a.timing == 2 && s.refused },
		accept: acceptProbeAll},
	// An ECU missing under ATAT2: back to ATAT1, and the probe again, which tells a slow ECU
	// from an adapter that mishandles the digit.
	{name: "patient timing", send: fixed("ATAT1"), fatal: failSilent,
		when:   func(a *Adapter, s *initState) bool { return !s.works && a.timing == 2 && !s.keepAT2 },
		accept: wantOK(false, func(a *Adapter, s *initState) { a.timing, s.relaxed = 1, true })},
	{name: "count digit under patient timing", send: probeCmd, wait: queryWait, fatal: failLink,
		when:   func(_ *Adapter, s *initState) bool { return s.relaxed && !s.refused },
		accept: acceptReprobe},
	{name: "multi-PID", send: func(a *Adapter, s *initState) string { c, _ := multiPIDCmd(a, s); return c },
		when: func(a *Adapter, s *initState) bool { c, _ := multiPIDCmd(a, s); return a.f.can() && c != "" },
		wait: queryWait, fatal: failLink, accept: acceptMultiPID},
}

func fixed(cmd string) func(*Adapter, *initState) string {
	return func(*Adapter, *initState) string { return cmd }
}

func queryWait(o *Options) time.Duration { return o.QueryTimeout }

// initialise runs the connect sequence (initSteps) and records the profile. Callers hold a.mu.
func (a *Adapter) initialise(ctx context.Context) error {
	a.f = format{}
	a.leftover = nil
	a.learned = map[string]learnedCount{}
	a.noHint = map[string]bool{}
	a.timing = 0
	a.silent = 0
	// One deadline for the whole connect, whatever its steps' own deadlines add up to.
	ctx, cancel := context.WithTimeoutCause(ctx, a.opts.ConnectTimeout, ErrConnectTimeout)
	defer cancel()
	s := &initState{prof: obd.Profile{Device: a.port.String()}, remembered: strings.ToUpper(a.opts.Protocol)}
	if p := strings.TrimPrefix(a.Profile().ProtocolNum, "A"); p != "" {
		s.remembered = p // a connect again (the adapter lost its settings, the link came back)
	}
	if err := a.runSteps(ctx, initSteps, s); err != nil {
		return err
	}
	p := s.prof
	p.CountHint = s.works
	p.AdaptiveTiming = a.timing
	if !p.CountHint && p.STN == "" { // an OBDLink LX refuses it too (obd-java-api #67)
		if v := reVersion.FindStringSubmatch(strings.ToUpper(p.Version)); v != nil && atLeast13(v[1], v[2]) {
			s.clone = append(s.clone, "claims v1.3+ but the count suffix does not work")
		}
	}
	p.Clone = len(s.clone) > 0
	if p.Clone {
		a.log.Info("elm327: adapter behaves like a clone", "device", p.Device, "signs", strings.Join(s.clone, "; "))
	}
	a.pmu.Lock()
	a.prof = p
	a.pmu.Unlock()
	a.log.Info("elm327: adapter ready", "device", p.Device, "version", p.Version, "stn", p.STN,
		"protocol", p.ProtocolNum, "volts", p.VoltageV, "count_hint", p.CountHint, "multi_pid", p.MultiPID, "adaptive_timing", p.AdaptiveTiming)
	return nil
}

// runSteps runs steps in order: each that applies is announced (Options.InitProgress),
// sends its command and has its answer read. The first failure that ends the connect is
// returned naming its step.
func (a *Adapter) runSteps(ctx context.Context, steps []initStep, s *initState) error {
	for _, st := range steps {
		if st.when != nil && !st.when(a, s) {
			continue
		}
		if a.opts.InitProgress != nil {
			a.opts.InitProgress(st.name)
		}
		var r stepReply
		if st.send != nil {
			r.cmd = st.send(a, s)
			wait := a.opts.ATTimeout
			if st.wait != nil {
				wait = st.wait(&a.opts)
			}
			if st.firm != nil {
				r.lines, r.err = a.exchangeFirm(ctx, r.cmd, st.firm(a, s))
			} else {
				r.lines, r.err = a.exchange(ctx, r.cmd, wait)
			}
			if r.err != nil && context.Cause(ctx) == ErrConnectTimeout {
				return fmt.Errorf("elm327: %s on %s: %w (%v): is the adapter stuck? unplug it and plug it in again", stepName(st.name, r.cmd), a.port, ErrConnectTimeout, a.opts.ConnectTimeout)
			}
			if r.err != nil && st.fatal.ends(ctx, r.err) {
				return a.stepFailed(st.name, r.cmd, r.err)
			}
		}
		err := st.accept(a, s, r)
		var d degraded
		switch {
		case err == nil:
		case errors.As(err, &d):
			a.log.Debug("elm327: init step degraded", "step", st.name, "cmd", r.cmd, "sign", string(d))
			if d != "" {
				s.clone = append(s.clone, string(d))
			}
		default:
			return fmt.Errorf("elm327: %s on %s: %w", stepName(st.name, r.cmd), a.port, err)
		}
	}
	return nil
}

func stepName(name, cmd string) string {
	if cmd == "" {
		return fmt.Sprintf("init step %q", name)
	}
	return fmt.Sprintf("init step %q (%s)", name, cmd)
}

// stepFailed words an exchange failure that ends the connect.
func (a *Adapter) stepFailed(name, cmd string, err error) error {
	var te *TimeoutError
	if errors.As(err, &te) && te.Raw == "" {
		return fmt.Errorf("elm327: %s: no prompt after %s on %s (is the adapter powered? is the baud rate right?): %w", stepName(name, ""), cmd, a.port, err)
	}
	if isLinkError(err) {
		return fmt.Errorf("elm327: %s on %s: %w: %w", stepName(name, cmd), a.port, ErrDisconnected, err)
	}
	return fmt.Errorf("elm327: %s on %s: %w", stepName(name, cmd), a.port, err)
}

// wantOK accepts an answer containing OK and then runs then; anything else is a refusal,
// a sign of a clone when sign is set.
func wantOK(sign bool, then func(a *Adapter, s *initState)) func(*Adapter, *initState, stepReply) error {
	return func(a *Adapter, s *initState, r stepReply) error {
		if r.err == nil && slices.ContainsFunc(r.lines, func(l string) bool { return strings.Contains(normalise(l), "OK") }) {
			if then != nil {
				then(a, s)
			}
			return nil
		}
		if sign {
			return degraded(r.cmd + " refused")
		}
		return degraded("")
	}
}

// The quick connect (elm327-obd.md §3). An adapter on ATSP0 searches protocol after protocol,
// for seconds; most cars talk CAN 11/500 or CAN 29/500. So before the search the connect tries
// protocols directly, each with ATSP<n> (no search) and a 0100 under a short deadline: the
// protocol this adapter or bay found last time, then CAN 11/500, then CAN 29/500. A protocol
// counts only when its 0100 drew a positive answer (41 00): an OK to ATSP<n> proves nothing,
// and NO DATA, CAN ERROR, BUS INIT: ...ERROR, a negative answer or no prompt leave the next
// try to go. When none answered, the protocol is closed (ATPC) and the automatic search runs
// as it would have from the start (ATSP0).

// quickSet sets the protocol proto names directly (ATSP<n>), unless it is empty, was tried
// already or a protocol was proved; name says which for people.
func quickSet(name string, proto func(a *Adapter, s *initState) string) initStep {
	return initStep{name: name, send: func(a *Adapter, s *initState) string { return "ATSP" + proto(a, s) },
		when: func(a *Adapter, s *initState) bool {
			p := proto(a, s)
			return p != "" && s.quick == "" && !slices.Contains(s.tried, p)
		},
		fatal: failSilent, accept: func(a *Adapter, s *initState, r stepReply) error {
			p := proto(a, s)
			s.tried = append(s.tried, p)
			return wantOK(false, func(_ *Adapter, s *initState) { s.trying, s.dirty = p, true })(a, s, r)
		}}
}

// quickAnswer sends 0100 on the protocol quickSet set, under a firm deadline (quickWait).
func quickAnswer(name string) initStep {
	return initStep{name: name + " answer", send: fixed("0100"), when: func(_ *Adapter, s *initState) bool { return s.trying != "" },
		firm: quickWait, fatal: failLink, accept: acceptQuick}
}

// quickStop interrupts an adapter that gave no prompt for quickAnswer's 0100. Any byte stops
// an ELM327 at work (STOPPED); the rest of the command then draws "?". Everything it says is
// let come and drained before the next command, so no answer is taken for the next one's.
func quickStop(name string) initStep {
	return initStep{name: name + " stopped", send: fixed("7F7F"), when: func(_ *Adapter, s *initState) bool { return s.stuck },
		fatal: failLink, accept: func(a *Adapter, s *initState, _ stepReply) error {
			s.stuck = false
			a.waitQuiet(200 * time.Millisecond)
			return nil
		}}
}

// quickWait is the firm deadline of a direct try's 0100: Options.QuickTimeout, and the time
// of a K-line or J1850 bus init on top for those protocols (2–3 s, elm327-obd.md §8).
func quickWait(a *Adapter, s *initState) time.Duration {
	if p := s.trying; p != "" && p[0] >= '1' && p[0] <= '5' {
		return a.opts.QuickTimeout + 3*time.Second
	}
	return a.opts.QuickTimeout
}

// quickProtocol is one of the protocols most cars talk, tried unless Options.NoQuick.
func quickProtocol(p string) func(a *Adapter, s *initState) string {
	return func(a *Adapter, _ *initState) string {
		if a.opts.NoQuick {
			return ""
		}
		return p
	}
}

// searching says whether the automatic search must run: no direct try proved a protocol.
func searching(_ *Adapter, s *initState) bool { return s.quick == "" }

// acceptQuick reads the 0100 of a direct try: a positive answer (41 00 from an ECU) proves the
// protocol and stands for the search's answer; anything else leaves the protocol unproved.
func acceptQuick(a *Adapter, s *initState, r stepReply) error {
	p := s.trying
	s.trying = ""
	if r.err != nil {
		// No prompt in time (the link is fine, see fatality): the adapter may be at work still.
		s.stuck = true
		a.log.Debug("elm327: protocol tried directly did not answer", "protocol", p, "err", r.err)
		return degraded("")
	}
	s.err94 = s.err94 || slices.ContainsFunc(r.lines, func(l string) bool { return strings.Contains(normalise(l), "ERR94") })
	f := a.f
	f.protocol = p[0]
	rep, err := parseReply(r.lines, f, "0100")
	if err == nil && slices.ContainsFunc(rep.responses, func(x obd.Response) bool {
		return len(x.Data) >= 6 && x.Data[0] == 0x41 && x.Data[1] == 0x00
	}) {
		s.quick = p
		s.search = r.lines
		return nil
	}
	a.log.Debug("elm327: protocol tried directly did not answer", "protocol", p, "answer", escape(strings.Join(r.lines, " | "), 120))
	return degraded("")
}

func acceptResync(a *Adapter, s *initState, r stepReply) error {
	if r.err != nil {
		a.log.Info("elm327: no prompt for the resync probe; resetting anyway", "device", s.prof.Device)
	}
	return nil
}

func acceptBanner(_ *Adapter, s *initState, r stepReply) error {
	s.banner = escape(findBanner(r.lines), 80)
	return nil
}

func acceptVoltage(a *Adapter, s *initState, r stepReply) error {
	if r.err != nil {
		return degraded("ATRV timed out")
	}
	v, ok := parseVoltage(r.lines)
	if !ok {
		return degraded(fmt.Sprintf("ATRV answered %q", r.lines))
	}
	s.prof.VoltageV = v
	if v < 6 {
		a.log.Warn("elm327: supply voltage low: is the adapter powered by the car?", "device", s.prof.Device, "volts", v)
	}
	return nil
}

func acceptSearch(_ *Adapter, s *initState, r stepReply) error {
	if r.err != nil {
		// The link is fine (see fatality): the adapter searched until the deadline.
		return fmt.Errorf("no answer during the protocol search: %w: %w", obd.ErrNoVehicle, r.err)
	}
	s.search = r.lines
	return nil
}

// acceptProtocolNum reads "A6" (automatic, found 6); clones may add lines around it.
func acceptProtocolNum(a *Adapter, s *initState, r stepReply) error {
	if r.err != nil {
		return degraded("")
	}
	for _, l := range r.lines {
		if m := reProtoNum.FindStringSubmatch(normalise(l)); m != nil {
			s.prof.ProtocolNum = m[1]
		}
	}
	if s.prof.ProtocolNum == "" {
		return degraded("")
	}
	a.f.protocol = s.prof.ProtocolNum[0]
	return nil
}

// acceptVehicle reads the search's 0100 answer: no ECU in it means no vehicle.
func acceptVehicle(a *Adapter, s *initState, _ stepReply) error {
	first, err := parseReply(s.search, a.f, "0100")
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			switch e.Code {
			case CodeNoData, CodeBusInitError, CodeCANError, CodeBusError, CodeBusBusy, CodeFBError:
				return noVehicle(e)
			}
			return e
		}
		return fmt.Errorf("0100 at connect: %w", err)
	}
	s.first = first
	a.learn("0100", first)
	return nil
}

func acceptProtocolName(_ *Adapter, s *initState, r stepReply) error {
	if r.err != nil || len(r.lines) == 0 {
		return degraded("")
	}
	s.prof.Protocol = escape(strings.TrimPrefix(strings.TrimPrefix(r.lines[len(r.lines)-1], "AUTO, "), "AUTO,"), 80)
	return nil
}

func acceptVersion(_ *Adapter, s *initState, r stepReply) error {
	if r.err == nil {
		s.prof.Version = escape(findBanner(r.lines), 80)
	}
	if s.prof.Version == "" {
		s.prof.Version = s.banner
	}
	if s.banner != "" && s.prof.Version != s.banner {
		return degraded(fmt.Sprintf("ATZ banner %q differs from ATI %q", s.banner, s.prof.Version))
	}
	return nil
}

func acceptSTN(_ *Adapter, s *initState, r stepReply) error {
	if r.err == nil && len(r.lines) > 0 && classify(normalise(r.lines[0])) == 0 {
		s.prof.STN = escape(r.lines[0], 80)
	}
	if strings.Contains(strings.ToUpper(s.prof.Version), "V2.1") && s.prof.STN == "" {
		return degraded("v2.1 banner (no genuine ELM327 v2.1 behaves like one)")
	}
	return nil
}

// probeCmd is the count-digit probe: 0100 with as many frames as the search's 0100 gave
// ("01002" for two ECUs). The first ECU's answer must come again, and every other ECU's too,
// which proves the adapter counts rather than stopping at the first frame. Asking for them
// all, rather than "01001", lets the adapter return at once without leaving frames behind.
func probeCmd(_ *Adapter, s *initState) string {
	digit := s.first.frames
	if digit < 1 || digit > 0xF {
		digit = 1
	}
	return fmt.Sprintf("0100%X", digit)
}

func acceptProbe(a *Adapter, s *initState, r stepReply) error {
	s.works, s.refused = a.probeWorks(s, r)
	if !s.works {
		return degraded("")
	}
	return nil
}

func acceptReprobe(a *Adapter, s *initState, r stepReply) error {
	s.works, _ = a.probeWorks(s, r)
	if !s.works {
		return degraded("")
	}
	a.log.Info("elm327: an ECU answers too slowly for aggressive adaptive timing; keeping ATAT1", "device", s.prof.Device)
	return nil
}

// probeWorks reports whether every ECU of the search's answer answered the count-digit
// probe, the first one alike, and whether the adapter refused the digit with an error string.
func (a *Adapter) probeWorks(s *initState, r stepReply) (works, refused bool) {
	if r.err != nil {
		return false, false
	}
	rep, perr := parseReply(r.lines, a.f, r.cmd)
	if perr == nil && len(rep.responses) >= len(s.first.responses) && len(rep.responses) > 0 && sameData(rep.responses[0], s.first.responses) {
		return true, false
	}
	var e *Error
	if errors.As(perr, &e) {
		// "?" never reached the bus, and NO DATA came after the timeout: nothing to wait for.
		return false, true
	}
	// The adapter returned before every ECU had answered (or cut an answer); the others may
	// still be answering: let them finish so their frames are drained, not mistaken for the
	// next answer.
	a.waitQuiet(300 * time.Millisecond)
	return false, false
}

// acceptProbeAll reads 0100 without a count digit under ATAT2: the adapter waited out its
// timeout, so every ECU of the search's answer in it proves every ECU answers within the
// aggressive wait.
func acceptProbeAll(a *Adapter, s *initState, r stepReply) error {
	if r.err != nil {
		return degraded("")
	}
	rep, perr := parseReply(r.lines, a.f, r.cmd)
	if perr == nil {
		all := true
		for _, f := range s.first.responses {
			all = all && slices.ContainsFunc(rep.responses, func(x obd.Response) bool { return x.ECU == f.ECU })
		}
		if all {
			s.keepAT2 = true
			return nil
		}
	}
	a.waitQuiet(300 * time.Millisecond) // a slower ECU may still be answering
	return degraded("")
}

// multiPIDCmd is the multi-PID probe, "01 00 xx" with a PID of known width that the first
// ECU supports, and that PID; "" when there is none.
func multiPIDCmd(a *Adapter, s *initState) (string, byte) {
	if len(s.first.responses) == 0 {
		return "", 0
	}
	r := s.first.responses[0]
	if len(r.Data) < 6 || r.Data[0] != 0x41 || r.Data[1] != 0x00 {
		return "", 0
	}
	var pid byte
	for _, c := range []byte{0x0C, 0x05, 0x0D, 0x04, 0x11, 0x0F, 0x10, 0x1F, 0x1C, 0x01} {
		if bitmapHas(r.Data, c) {
			pid = c
			break
		}
	}
	if pid == 0 {
		return "", 0
	}
	line := fmt.Sprintf("0100%02X", pid)
	if s.works {
		// Each ECU's 0100 bitmap says what it will answer: the bitmap again, plus the PID
		// when it supports it. One that does not batch answers less, which only costs the
		// adapter's timeout.
		var x []obd.Expect
		for _, e := range s.first.responses {
			n := 6
			if bitmapHas(e.Data, pid) {
				n += 1 + pidWidth[pid]
			}
			x = append(x, obd.Expect{Len: n})
		}
		if d := expectedFrames(x, a.f); d >= 1 && d <= 0xF {
			line += fmt.Sprintf("%X", d)
		}
	}
	return line, pid
}

func acceptMultiPID(a *Adapter, s *initState, r stepReply) error {
	if r.err != nil {
		return degraded("")
	}
	_, pid := multiPIDCmd(a, s)
	rep, err := parseReply(r.lines, a.f, r.cmd)
	if err != nil {
		return degraded("")
	}
	first := s.first.responses[0]
	for _, x := range rep.responses {
		d := x.Data
		if x.ECU == first.ECU && len(d) == 2+4+1+pidWidth[pid] && d[0] == 0x41 && d[1] == 0x00 && d[6] == pid {
			s.prof.MultiPID = true
			return nil
		}
	}
	return degraded("")
}
