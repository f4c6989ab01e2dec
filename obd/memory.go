package obd

import (
	"maps"
	"slices"
	"strings"
	"sync"
)

// Memory keeps, per vehicle (keyed by VIN), how long its ECUs' answers were to the requests
// whose size a scan cannot work out from what the car says first: pending and permanent codes
// (07, 0A), who holds a freeze frame (02 00 00), the number of CALIDs, CVNs and IUPR counters
// (0904, 0906, 0908, 090B). A later scan of the same car gives those sizes to the adapter as
// Request.Expect, so an ELM327 stops listening as soon as the answers are in instead of waiting
// out its timeout after each (elm327-obd.md §7: "learn the count per (vehicle, request)").
//
// What is recalled is a guess about today's answer, never a fact: a car may have more codes
// than last time. The scan only uses it where a wrong guess cannot lose an answer — the same
// ECUs answered 0100 as last time, every ECU that may answer is covered, and each answer
// carries its own length (ISO 15765-4), so an adapter that stopped early sees a message cut
// short and asks again without the hint. Legacy protocols (J1850, K-line) carry no length and
// are not remembered.
//
// Implementations must be safe for concurrent use (several bays scan at once). Remember's
// failures are the implementation's to log: a scan never fails because its memory did.
type Memory interface {
	// Recall returns what was remembered of the car with this VIN.
	Recall(vin string) (Answers, bool)
	// Remember replaces what is kept for the car with this VIN.
	Remember(vin string, a Answers)
}

// Answers is what one car's ECUs answered: the ECUs that answered 0100, and for each request
// (upper-case hex, "0904") the length of every ECU's answer, as Expect.Len counts it. An ECU
// missing from a request's list stayed silent.
type Answers struct {
	ECUs     []string            `json:"ecus"`
	Requests map[string][]Answer `json:"requests"`
	// Codes is each ECU's answers to 03 and 07 in hex ("43 00 | 47 00"): whether the ECU
	// can hold a freeze frame now that it did not hold then.
	Codes map[string]string `json:"codes,omitempty"`
}

// Answer is the length of one ECU's answer to one request.
type Answer struct {
	ECU string `json:"ecu"`
	Len int    `json:"len"`
}

// MapMemory is a Memory held in a map, for one process's lifetime (`obdgw scan`, tests). The
// gateway daemon keeps its memory in the buffer file instead.
type MapMemory struct {
	mu sync.Mutex
	m  map[string]Answers
}

var _ Memory = (*MapMemory)(nil)

// Recall implements Memory.
func (m *MapMemory) Recall(vin string) (Answers, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.m[vin]
	return a.clone(), ok
}

// Remember implements Memory.
func (m *MapMemory) Remember(vin string, a Answers) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]Answers{}
	}
	m.m[vin] = a.clone()
}

func (a Answers) clone() Answers {
	c := Answers{ECUs: slices.Clone(a.ECUs), Requests: make(map[string][]Answer, len(a.Requests)), Codes: maps.Clone(a.Codes)}
	for k, v := range a.Requests {
		c.Requests[k] = slices.Clone(v)
	}
	return c
}

// recallable says whether a remembered answer list for req may size today's request. Every
// remembered responder must be one that may answer today. For a service whose responders are
// fixed by the ECUs' software (01, 03, 07, 09, 0A) an ECU silent last time is silent again.
// Who answers service 02 depends on whether a freeze frame is stored, which changes with the
// codes: an ECU silent last time is trusted to be silent again only if it reports today the
// very codes (03 and 07) it reported then.
func (s *scanner) recallable(req Request, got []Answer) bool {
	if len(got) == 0 {
		return false
	}
	may := s.mayAnswer(req)
	for _, x := range got {
		if x.Len <= 0 || !slices.Contains(may, x.ECU) {
			return false
		}
	}
	if req.Service != 0x02 {
		return true
	}
	for _, id := range may {
		if slices.ContainsFunc(got, func(x Answer) bool { return x.ECU == id }) {
			continue
		}
		then, ok := s.recalled.Codes[id]
		if !ok || then != s.codes(id) {
			return false
		}
	}
	return true
}

// sameECUs reports whether two ECU lists hold the same identifiers.
func sameECUs(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// merged is what to remember after a scan: what this scan learnt, plus what was remembered of
// requests this scan had no reason to make (a freeze frame PID with no frame stored today),
// as long as the same ECUs answered.
func merged(old *Answers, ecus []string, learnt map[string][]Answer, codes map[string]string) Answers {
	a := Answers{ECUs: slices.Sorted(slices.Values(ecus)), Requests: map[string][]Answer{}, Codes: codes}
	if old != nil {
		maps.Copy(a.Requests, old.clone().Requests)
	}
	for k, v := range learnt {
		if v == nil {
			delete(a.Requests, k) // nobody answered today, or the answer cannot size a hint
			continue
		}
		a.Requests[k] = slices.Clone(v)
	}
	return a
}

// recallCar looks the car up in opts.Memory once its VIN is known. Only CAN answers are sized
// from memory (see Memory), and only when the ECUs that answered 0100 are those remembered.
func (s *scanner) recallCar() {
	if s.opts.Memory == nil || s.form != FormCAN || s.r.VIN == "" {
		return
	}
	s.carECUs = s.ecuIDs()
	s.learnt = map[string][]Answer{}
	a, ok := s.opts.Memory.Recall(s.r.VIN)
	switch {
	case !ok:
		s.log.Debug("obd scan: car not seen before; answers are sized as they come", "vin", s.r.VIN)
	case !sameECUs(a.ECUs, s.carECUs):
		s.log.Debug("obd scan: other ECUs answer than on the last visit; not using its answer sizes", "vin", s.r.VIN, "then", a.ECUs, "now", s.carECUs)
	default:
		s.recalled = &a
		s.log.Debug("obd scan: sizing answers from an earlier scan of this car", "vin", s.r.VIN, "requests", len(a.Requests))
	}
}

// recall is the hint Memory gives for req, or nil (see recallable).
func (s *scanner) recall(req Request) []Expect {
	if s.recalled == nil {
		return nil
	}
	got := s.recalled.Requests[req.String()]
	if !s.recallable(req, got) {
		return nil
	}
	out := make([]Expect, len(got))
	for i, x := range got {
		out[i] = Expect{Len: x.Len}
	}
	return out
}

// mayAnswer lists the ECUs that can answer req: those whose bitmap names the PID of a service
// 02 or 09 request, every ECU of the car for the rest.
func (s *scanner) mayAnswer(req Request) []string {
	if len(req.Data) == 0 || req.Data[0] == 0x00 || req.Service != 0x02 && req.Service != 0x09 {
		return s.carECUs
	}
	pid := req.Data[0]
	var ids []string
	for _, id := range s.carECUs {
		e := s.ecus[id]
		if req.Service == 0x02 && e.sup02.Has(pid) || req.Service == 0x09 && e.sup09.Has(pid) {
			ids = append(ids, id)
		}
	}
	return ids
}

// learn records the length of every ECU's answer to a request the scan could not size
// itself. An ECU that answered twice (a "response pending" first) makes the request
// unlearnable: its frame count is not its answer's.
func (s *scanner) learn(req Request, resps []Response) {
	if s.learnt == nil {
		return
	}
	key := req.String()
	got := make([]Answer, 0, len(resps))
	for _, r := range resps {
		if slices.ContainsFunc(got, func(x Answer) bool { return x.ECU == r.ECU }) || r.ECU == "" {
			s.learnt[key] = nil
			return
		}
		got = append(got, Answer{ECU: r.ECU, Len: len(r.Data)})
	}
	slices.SortFunc(got, func(a, b Answer) int { return strings.Compare(a.ECU, b.ECU) })
	if len(got) == 0 {
		got = nil
	}
	s.learnt[key] = got
}

// remember hands what this scan learnt to Memory, after a scan that ran to its end.
func (s *scanner) remember() {
	if s.opts.Memory == nil || s.learnt == nil {
		return
	}
	codes := map[string]string{}
	for _, id := range s.carECUs {
		codes[id] = s.codes(id)
	}
	s.opts.Memory.Remember(s.r.VIN, merged(s.recalled, s.carECUs, s.learnt, codes))
}

// codes is what ECU id answered to 03 and 07 in this scan, as Answers.Codes keeps it.
func (s *scanner) codes(id string) string {
	return hexSpaced(s.dtcAnswers[id][ServiceStored]) + " | " + hexSpaced(s.dtcAnswers[id][ServicePending])
}

func (s *scanner) ecuIDs() []string {
	ids := make([]string, 0, len(s.ecus))
	for id := range s.ecus {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
