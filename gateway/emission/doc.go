// Package emission runs the post-repair self-tests of an emission maintenance station (M station)
// and judges them the way an inspection station (I station) would, so a repaired car is not sent
// back to the I station to fail again.
//
// Concepts:
//
//   - Limits is the "emission:" section of the daemon's configuration: the legal limit values
//     (限值a and 限值b of GB 18285-2018 / GB 3847-2018), the λ range, and the procedure
//     parameters the standards' texts available to us did not confirm. Nothing a judgement
//     depends on is a constant in the procedures; limits differ by province and date.
//   - A Test is one self-test on one bay: a method (two-speed idle for petrol cars, free
//     acceleration for diesels), the bay's rig, where engine speed comes from (the rig's
//     tachometer or OBD PID 010C through the bay's adapter), the vehicle's facts and the limits.
//     RunTest drives it on the clock, second by second, and returns a Result: pass, fail,
//     refused (the data does not allow a judgement, with the reasons), aborted or error.
//     Process data (HJ 1238 ODS_A16 style) are kept in every case, also when the rig dies mid-test.
//   - Runs keeps at most one running test per bay for the daemon: Start, Abort, Subscribe to
//     Progress for a live console, Wait for the Result.
//   - CheckOBD applies the inspection-station OBD rules (MIL, DTCs, more than two readiness
//     monitors incomplete, VIN mismatch, CALID/CVN present) to a scan summary.
//
// Every reason a test fails or is refused carries Chinese and English text for the console.
package emission
