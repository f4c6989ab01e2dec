package ehrhttp

import (
	"context"
	"fmt"
)

// NotForwardableError is a stored envelope the platform cannot be sent: not an ehr/1 record,
// or a record of another shop than the account's. Permanent, like a refusal.
type NotForwardableError struct{ Err error }

func (e *NotForwardableError) Error() string   { return "ehrhttp: not forwardable: " + e.Err.Error() }
func (e *NotForwardableError) Unwrap() error   { return e.Err }
func (e *NotForwardableError) Permanent() bool { return true }

// Forwarder returns the Send function of a receiver's forward queue (cloud.Forwarder): the
// stored envelope's record added to the platform. The account logs in as one shop, so a
// record whose company_code is not the app key is not forwarded — the platform would file it
// under the wrong shop — unless anyCompany says the account may add for every shop (a
// provincial account; unconfirmed that any platform offers one).
func (c *Client) Forwarder(anyCompany bool) func(ctx context.Context, id string, envelope []byte) error {
	return func(ctx context.Context, id string, envelope []byte) error {
		rec, env, err := RecordOf(envelope)
		if err != nil {
			return &NotForwardableError{Err: err}
		}
		if env.ID != id {
			return &NotForwardableError{Err: fmt.Errorf("envelope id %q, queued as %q", clip(env.ID), clip(id))}
		}
		if !anyCompany && env.CompanyCode != c.o.AppKey {
			return &NotForwardableError{Err: fmt.Errorf("company_code %s is not the account's companycode: the platform would file it under another shop", env.CompanyCode)}
		}
		_, err = c.Add(ctx, rec)
		return err
	}
}
