// Package elm327 drives ELM327-compatible OBD adapters (genuine ELM, STN/OBDLink and the
// clones a workshop actually owns) over a serialport.Port and implements obd.Adapter.
//
// Concepts:
//
//   - Initialisation (Open, New) follows a fixed sequence: resync with "7F7F" (never a bare CR,
//     which repeats the previous command), ATZ, echo/linefeeds/spaces off, headers on,
//     adaptive timing, the quick connect (the remembered protocol, CAN 11/500 and CAN 29/500
//     set directly, each kept only when 0100 draws 41 00 within a short firm deadline), supply
//     voltage, and only when no direct try answered the automatic search (ATPC, ATSP0, and a
//     first 0100 with a long deadline that SEARCHING... and BUS INIT: extend); then protocol,
//     version and STN probes (elm327-obd.md §3). What the adapter proved it can do is its
//     obd.Profile.
//     The sequence is a list of named steps (init.go: what each sends, which failures end
//     the connect, which only cost a capability); Options.InitProgress is told each step as
//     it starts, and an error that ends the connect names its step and command
//     (elm327: init step "echo off" (ATE0) on …).
//     Before that, Open finds the baud rate of a serial or USB address that names none: the
//     resync probe at 38400, 9600, 230400, 115200, 57600 and 19200 until a clean prompt comes
//     back (Options.BaudProgress tells the user); reopening after a broken link uses it.
//   - Framing: a reply ends at the prompt '>' wherever it falls in the byte stream. NUL bytes,
//     Bluetooth module chatter ("+DISC:SUCCESS") and echoes are dropped; bytes that arrived
//     between commands (late frames of a slow ECU) are drained before the next command,
//     without waiting for more, and logged, rate-limited. Consecutive frames at the start of
//     an answer whose first frame is not in it (the tail of an earlier answer) are dropped.
//   - Parsing (parse.go, no I/O): headers-on CAN lines (11- and 29-bit identifiers) are
//     grouped per ECU and reassembled as ISO-TP messages; legacy J1850/K-line lines are grouped
//     by source address; headers-off output is read too. obd.Response.ECU is the CAN
//     identifier ("7E8", "18DAF110") or the legacy source address ("10"). A legacy ECU's
//     several lines (a VIN in five messages, Mode 03 with three codes a line) come back as one
//     response: the messages concatenated, each keeping its own service byte (Mode 09: and its
//     PID and sequence byte, in sequence order), which is the legacy form the obd decoders read.
//   - Errors: every adapter error string becomes an *Error with a Code, the raw reply and what
//     to check. NO DATA wraps obd.ErrNoData (an answer, not a failure); UNABLE TO CONNECT, and
//     any failure of the first 0100, wrap obd.ErrNoVehicle.
//   - The response-count suffix ("010C1") is used only when this adapter proved it works
//     (0100 versus "0100N" at connect, N the frames 0100 gave: every ECU must answer again).
//     The count is the one learned from this request's last answer or, before that, the
//     requester's obd.Request.Expect turned into CAN frames or legacy messages; without
//     either the adapter waits out its timeout. A shortfall of a count that should be exact
//     (fewer frames or ECUs, NO DATA, a broken answer) falls back to no suffix for that
//     request. A Likely hint is a guess: fewer answers after the timeout and NO DATA are
//     taken as they are; an answer cut short, or an ECU missing when the adapter stopped at
//     the count, is asked once more, with the count the answer showed (a cut message's first
//     frame gives its length; an ECU left out counts at its guessed size), else without the
//     suffix.
//   - Adaptive timing: ATAT1 at initialisation, so the search's 0100 hears every ECU. On CAN
//     the count-suffix probe then runs under ATAT2 (shorter waits for more frames); if an ECU
//     is missing it runs again under ATAT1, which tells a slow ECU from an adapter that
//     mishandles the suffix, and ATAT1 stays. An adapter that refuses the suffix proves ATAT2
//     with 0100 without one instead: it waits out its timeout on every request, so the
//     shorter wait saves the most there. Under ATAT2, an answer that times out (short of its
//     count, if it had one) without an ECU sure to answer — every ECU of a learned count or
//     of the requester's hint; in a guess, those marked obd.Expect.Answers — sends the
//     adapter back to ATAT1 for the connection, and the request goes again (never service
//     04). Profile().AdaptiveTiming says which is in force.
//   - Multi-PID Mode 01 requests (up to 6 PIDs) go out as one request on CAN when the adapter
//     and ECU proved they work; otherwise, or on NO DATA or a timeout, they are split into
//     single-PID requests and merged into one response per ECU in request order.
//   - Retries: the reasons a request goes again are one ordered list (retry.go): no prompt
//     with a count digit (again without it, for good), an ECU too slow for ATAT2 (ATAT1,
//     then again), a guessed count that cut the answer (the count it showed, else no digit),
//     a learned or hinted count that fell short (no digit, for good), STOPPED or DATA ERROR
//     (again as it was), lost settings (re-initialise, then again; shares its once with
//     STOPPED). Each reason is used once per request, so a request goes out a bounded
//     number of times.
//   - Safety: a service 04 (clear DTCs) request is sent as exactly "04", never with a count
//     digit, never retried, and nothing the driver sends can repeat it.
//   - Reconnects: when the link breaks mid-request (USB unplugged, Bluetooth dropped) the
//     adapter closes the port, reopens it through Options.Reopen, re-initialises and fails the
//     current request with ErrDisconnected; the next request works. Two requests in a row
//     that draw nothing at all before their deadline (a car that does not answer still gets
//     NO DATA from the adapter) count as a broken link too: a stalled adapter costs two
//     QueryTimeouts, not one per request left in a scan.
//   - Bounds: the connect as a whole has one deadline (Options.ConnectTimeout,
//     ErrConnectTimeout); SEARCHING... and BUS INIT: extend a request's deadline by at most
//     one SearchTimeout however many come; one answer is read up to MaxReply bytes, and an
//     adapter that sends more without a prompt fails the request (*OverflowError) and the
//     link is reset as if it broke.
//   - Adapter output in errors and logs is escaped (\x1b, \r, \x00): a clone's garbage cannot
//     drive a terminal or forge a log line; profile strings (version, protocol name) are
//     escaped the same way.
package elm327
