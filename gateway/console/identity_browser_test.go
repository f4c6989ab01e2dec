package console_test

import (
	"errors"
	"testing"

	"github.com/obdgw/obdgw/gateway/workorder"
)

// TestConsoleVINIdentity: what the console shows of a car's identity. A bay scan of another
// car is shown on the order with both VINs, and attached only after the technician confirms
// with a reason; a Chinese VIN with a wrong check digit is refused at creation and kept only
// on a confirmation; the fault text the record will carry is shown before settlement.
func TestConsoleVINIdentity(t *testing.T) {
	browser := startBrowser(t)

	t.Run("ConflictShownWithBothVINsAndConfirmed", func(t *testing.T) {
		e := newEnv(t)
		const typed = "LK6ADCE15PB405127"
		o, err := e.store.Create(workorder.NewOrder{Plate: "浙A12345", PlateColor: "blue", VIN: typed, Bay: bayName, Fault: "灯亮"})
		if err != nil {
			t.Fatal(err)
		}
		// What the daemon does with a finished bay scan (gateway/daemon onScan).
		_, err = e.store.AddScan(bayName, "automatic scan on connection", e.bays.report)
		var mm *workorder.VINMismatchError
		if !errors.As(err, &mm) {
			t.Fatalf("AddScan of another car = %v, want a VIN mismatch", err)
		}
		p := newPage(t, browser)
		p.login(e)
		p.goTo(e.url + "/#/orders/" + o.ID)
		p.waitText("[data-role=conflict-order-vin]", typed)
		p.waitText("[data-role=conflict-car-vin]", carVIN)
		p.waitText("[data-role=vin-conflict]", "未加入本工单")
		p.shot("vin-conflict")

		// A confirmation without a reason is refused, naming the field.
		p.click("[data-act=confirm-vin-mismatch]")
		p.waitText("#vin-confirm-form [data-role=errors]", "confirm_vin_mismatch.reason")
		if got, _ := e.store.Get(o.ID); len(got.Scans) != 0 {
			t.Fatal("scan attached without a reason")
		}
		p.set("#vin-confirm-form [name=reason]", "更换过发动机电脑")
		p.click("[data-act=confirm-vin-mismatch]")
		p.waitText("[data-role=scans]", mm.ScanID)
		p.waitText("[data-role=order-vin]", typed)
		p.waitText("#view", "手工输入（已确认与车辆读取不同）")
		p.waitText("[data-role=warnings]", "车辆读取的VIN与工单不一致")
		// The fault text the record will carry, with the scan's codes, before settlement.
		got, _ := e.store.Get(o.ID)
		if got.VINConflict != nil || got.VINSource != workorder.VINTypedConfirmed || got.VINReason != "更换过发动机电脑" || got.FaultRecord == "灯亮" {
			t.Fatalf("order after the confirmation: %+v", got)
		}
		p.waitText("[data-role=fault-record]", got.FaultRecord)
		p.waitText("[data-role=fault-record]", "P0171(待定)")
		if p.eval(`String(!!document.querySelector("[data-role=vin-conflict]"))`) != "false" {
			t.Fatal("the conflict is still shown after the confirmation")
		}
	})

	t.Run("ConflictResolvedWithTheCarsVIN", func(t *testing.T) {
		e := newEnv(t)
		o, err := e.store.Create(workorder.NewOrder{Plate: "浙A12345", PlateColor: "blue", VIN: "LK6ADCE15PB405127", Bay: bayName})
		if err != nil {
			t.Fatal(err)
		}
		p := newPage(t, browser)
		p.login(e)
		p.waitJS(`document.body.dataset.events === "on"`, "the event stream")
		p.goTo(e.url + "/#/orders/" + o.ID)
		p.waitText("[data-role=order-vin]", "LK6ADCE15PB405127")
		// The conflict arrives while the order is open on the page.
		if _, err := e.store.AddScan(bayName, "automatic scan on connection", e.bays.report); err == nil {
			t.Fatal("AddScan of another car attached it")
		}
		p.waitText("[data-role=conflict-car-vin]", carVIN)
		p.click("[data-act=use-car-vin]")
		p.waitText("[data-role=order-vin]", carVIN)
		p.waitText("[data-role=scans]", "SC000001")
		if got, _ := e.store.Get(o.ID); got.VIN != carVIN || got.VINSource != workorder.VINOBD || len(got.Scans) != 1 {
			t.Fatalf("order after using the car's VIN: %+v", got)
		}
	})

	t.Run("CheckDigitRefusedThenConfirmed", func(t *testing.T) {
		e := newEnv(t)
		p := newPage(t, browser)
		p.login(e)
		p.goTo(e.url + "/#/orders/new")
		p.waitJS(`document.querySelector("#order-form")`, "the new-order form")
		p.set("#order-form [name=plate]", "京a·d12345")
		p.set("#order-form [name=vin]", "LK6ADCE16PB405127")
		p.click("[data-act=save]")
		p.waitText("#order-form [data-role=errors]", "VIN校验位不符")
		p.waitText("#order-form [data-role=errors]", "5 is expected")
		p.waitJS(`!document.querySelector("[data-role=vin-confirm]").hidden`, "the confirmation asked for")
		p.shot("vin-check-digit")
		if list, _, _ := e.store.List(workorder.Filter{}); len(list) != 0 {
			t.Fatal("order stored before the confirmation")
		}
		p.set("#order-form [name=vin_reason]", "与行驶证核对无误")
		p.click("[data-act=confirm-vin]")
		p.waitText("[data-role=warnings]", "VIN校验位不符")
		list, _, _ := e.store.List(workorder.Filter{})
		if len(list) != 1 || list[0].VIN != "LK6ADCE16PB405127" || list[0].VINCheckDigitReason != "与行驶证核对无误" || list[0].Plate != "京AD12345" {
			t.Fatalf("orders after the confirmation: %+v", list)
		}
		// Changing the VIN on the order follows the same rule.
		p.waitJS(`document.querySelector("#edit-form")`, "the edit form")
		p.set("#edit-form [name=vin]", "LJ8ECM2B3R1063348")
		p.click("[data-act=save-edit]")
		p.waitText("#edit-form [data-role=errors]", "2 is expected")
		p.waitJS(`!document.querySelector("#edit-form [data-role=vin-confirm]").hidden`, "the confirmation asked for on the edit form")
		if got, _ := e.store.Get(list[0].ID); got.VIN != "LK6ADCE16PB405127" {
			t.Fatalf("VIN changed without a confirmation: %s", got.VIN)
		}
		p.set("#edit-form [name=vin_reason]", "车架号钢印即如此")
		p.click("[data-act=confirm-edit-vin]")
		p.waitText("[data-role=order-vin]", "LJ8ECM2B3R1063348")
		if got, _ := e.store.Get(list[0].ID); got.VINCheckDigitReason != "车架号钢印即如此" {
			t.Fatalf("order after the confirmed edit: %+v", got)
		}
		// A plate that fits no form is refused with the expected forms.
		p.goTo(e.url + "/#/orders/new")
		p.waitJS(`document.querySelector("#order-form")`, "the new-order form")
		p.set("#order-form [name=plate]", "hello")
		p.click("[data-act=save]")
		p.waitText("#order-form [data-role=errors]", "车牌号码格式不正确")
		p.waitText("#order-form [data-role=errors]", "京A12345, 京AD12345")
	})
}
