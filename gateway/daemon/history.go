package daemon

import "github.com/obdgw/obdgw/gateway/api"

var _ api.SelfTestKeeper = selfTests{}

// Kept is the judged self-test kept for an order, for the vehicle history.
func (s selfTests) Kept(order string) (api.KeptSelfTest, bool, error) {
	st, ok, err := s.d.tests.Get(order)
	if err != nil || !ok || st.Result == nil {
		return api.KeptSelfTest{}, false, err
	}
	r := st.Result
	return api.KeptSelfTest{Order: st.Order, Bay: st.Bay, Method: r.Method.String(), Verdict: string(r.Verdict),
		Start: r.Start, End: r.End, Rig: r.Rig, RigModel: st.RigModel, RigSerial: st.RigSerial, Result: r}, true, nil
}
