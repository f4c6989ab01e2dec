// Package ehr builds and validates the JT/T 1132 maintenance record (汽车维修电子健康档案) that a
// settled work order sends to the provincial platform: the national lcipprocarfixrecordadd form
// of docs/ehr-record.md §3, all values strings, dates yyyyMMdd, lists never null.
//
// Build is pure: it turns the facts of a work order (Input) into a wire.EHRRecord, putting the
// scan's fault codes into faultdescription when the technician wrote little, and the 尾气治理
// prefix on emission repairs. Validate applies the rules of §9 and splits what it finds into
// hard errors (the record cannot be sent; the field is named so the order can be fixed — a value
// over a limit is never truncated silently) and warnings (abnormal but possible values shown to
// the user and carried in the envelope). Nothing here invents or substitutes a VIN or mileage.
//
// Limits marked "proxy" in the reference come from platform database columns, not from the
// standard's data-element dictionary (JT/T 1132.3, not available); they are constants here and
// must be checked against the target province's interface document before being relied on.
package ehr
