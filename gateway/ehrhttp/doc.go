// Package ehrhttp delivers JT/T 1132 maintenance records to the national automobile-maintenance
// eHR HTTPS API (汽车维修电子健康档案系统, the lcipprodatarest interface of
// docs/ehr-record.md §4.1): it logs in (lcipprogetaccesstoken), keeps the access token and
// renews it, and adds one record per call (lcipprocarfixrecordadd).
//
// One Client serves two places: the gateway delivering straight from its outbox (Delivery,
// `uplink.transport: ehr-https`) and the reference receiver forwarding what it stored
// (Client.Forward, `obdgw receive --forward-ehr`).
//
// Concepts:
//
//   - Body maps an ehr/1 payload (gateway/wire) to the platform's request body. The payload
//     already carries the national form under "record"; the body is that form with the
//     access_token added, meta left out.
//   - A refused record (*RefusedError: the platform's code and status text) is permanent: the
//     same bytes will be refused again, so nobody retries it. Everything else — a 5xx, a
//     timeout, a rate limit (HTTP 429 or a configured business code), a login the platform
//     refuses — is temporary: Client.Add retries a few times with backoff and jitter, and the
//     callers keep the record and try again later.
//   - Values the public sources do not confirm (docs/ehr-record.md §10: the URL paths per
//     province, the token's lifetime, the add call's error codes) are Options, marked so.
//
// Secrets: the app key (the shop's companycode) and the app secret (its companypassword) come
// from files of mode 0600 read by the caller (gateway/config). Neither they nor the token are
// ever logged; the record carries no owner name or phone (docs/ehr-record.md §7).
package ehrhttp
