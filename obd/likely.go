package obd

// The usual answers to the requests whose size a first visit cannot work out. On CAN every
// answer carries its own length (ISO 15765-2), so an adapter that stopped listening too early
// sees the message cut short and asks again; a guess that proves too large costs the wait it
// was meant to save. Each guess lists every ECU that may answer, so an ECU that answered no
// guessed frame can only be one that stayed silent.
const (
	// likelyIUPR08 is the newer 0908 list of J1979 (20 counters, SO2S added); a car with the
	// older 16 answers within the guess, after the wait.
	likelyIUPR08 = 20
	// likelyIUPR0B is the 090B list of elm327-obd.md §14.
	likelyIUPR0B = 16
)

// likely is the Likely hint for req on CAN, or nil where the scan has none:
//   - 07, 0A: every ECU, one frame (up to two codes);
//   - 02 00 00: every ECU, one bitmap;
//   - 09 04: every ECU whose bitmap names it, one CALID;
//   - 09 06: one CVN per CALID the ECU reported (J1979 pairs them), at least one;
//   - 09 08, 09 0B: the counter lists above.
//
// An ECU is marked to answer (Expect.Answers) for 09 when its own bitmap names the PID, and
// for 07 when it answered 03.
func (s *scanner) likely(req Request) []Expect {
	if s.form != FormCAN || len(s.ecus) == 0 {
		return nil
	}
	var size func(e *ECUReport) int
	may := func(*ECUReport) bool { return true }
	sure := func(*ECUReport) bool { return false }
	switch {
	case (req.Service == ServicePending || req.Service == ServicePermanent) && len(req.Data) == 0:
		size = func(*ECUReport) int { return 2 } // 47 00
		if req.Service == ServicePending {
			sure = func(e *ECUReport) bool { return s.dtcAnswers[e.ID][ServiceStored] != nil }
		}
	case req.Service == 0x02 && len(req.Data) == 2 && req.Data[0] == 0x00 && req.Data[1] == 0x00:
		size = func(*ECUReport) int { return 7 } // 42 00 00 + four bitmap bytes
	case req.Service == 0x09 && len(req.Data) == 1:
		pid := req.Data[0]
		may = func(e *ECUReport) bool { return e.sup09.Has(pid) }
		sure = may
		switch pid {
		case 0x04:
			size = func(*ECUReport) int { return 3 + 16 }
		case 0x06:
			size = func(e *ECUReport) int { return 3 + 4*max(1, len(e.CALIDs)) }
		case 0x08:
			size = func(*ECUReport) int { return 3 + 2*likelyIUPR08 }
		case 0x0B:
			size = func(*ECUReport) int { return 3 + 2*likelyIUPR0B }
		default:
			return nil
		}
	default:
		return nil
	}
	return s.hint(func(e *ECUReport) (Expect, bool) { return Expect{Len: size(e), Answers: sure(e)}, may(e) })
}
