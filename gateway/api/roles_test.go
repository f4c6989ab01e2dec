package api

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// roleToken is the secret of the test token holding role r (named after the role).
func roleToken(r Role) string { return "token-of-" + string(r) + "-0123456789" }

// roleTokens is one token per role, for the fixture.
func roleTokens() []Token {
	var ts []Token
	for _, r := range Roles {
		ts = append(ts, Token{Name: "the-" + string(r), Secret: roleToken(r), Role: r})
	}
	return ts
}

// TestEveryRouteRefusesTheRolesItDoesNotName sends every route with a token of every role: a
// role the route does not name is answered 403 naming the roles needed (before anything is
// done), a role it names is let through (whatever the handler then answers).
func TestEveryRouteRefusesTheRolesItDoesNotName(t *testing.T) {
	f := newFixture(t, false)
	f.mustDo(201, "POST", "/workorders", newOrderBody)
	refusals := 0
	for _, rt := range f.api.Routes() {
		if isPublic(rt) {
			continue
		}
		for _, role := range Roles {
			allowed := slices.Contains(rt.Roles, role)
			if allowed && (strings.HasSuffix(rt.Path, "/live") || strings.HasSuffix(rt.Path, "/progress")) {
				continue // an allowed stream would never end; the refusals are what is tested
			}
			body := ""
			if isWrite(rt.Method) {
				body = `{"confirm":true,"vin":"` + carVIN + `","request_id":"r-` + string(role) + `","costlistcode":"HS-` + string(role) + `","name":"x","hours":1}`
			}
			code, m := f.do(rt.Method, concrete(rt.Path), roleToken(role), body)
			switch {
			case !allowed:
				refusals++
				msg, _ := m["error"].(string)
				if code != 403 || m["code"] != "role" || m["role"] != string(role) || !strings.Contains(msg, roleList(rt.Roles)) {
					t.Errorf("%s %s as %s = %d %v, want 403 naming %s", rt.Method, rt.Path, role, code, m, roleList(rt.Roles))
				}
			case code == 403 || code == 401:
				t.Errorf("%s %s as %s (allowed) = %d %v", rt.Method, rt.Path, role, code, m)
			}
		}
	}
	if refusals < 20 {
		t.Fatalf("only %d refusals tested", refusals)
	}
	// Nothing a refused role sent got through: the clear was never sent by a front desk token.
	for _, c := range f.bays.clears {
		if c.RequestID == "r-front_desk" || c.RequestID == "r-monitor" || c.RequestID == "r-shop_software" {
			t.Fatalf("a refused role cleared fault codes: %+v", c)
		}
	}
}

// TestRolesOfTheRules spells out the rules a shop relies on, apart from the table.
func TestRolesOfTheRules(t *testing.T) {
	f := newFixture(t, false)
	find := func(method, path string) Route {
		for _, rt := range f.api.Routes() {
			if rt.Method == method && rt.Path == path {
				return rt
			}
		}
		t.Fatalf("no route %s %s", method, path)
		return Route{}
	}
	for _, c := range []struct {
		method, path string
		want         []Role
	}{
		{"POST", "/bays/{bay}/clear-dtcs", []Role{RoleTechnician, RoleManager}},
		{"POST", "/workorders/{id}/settle", []Role{RoleFrontDesk, RoleManager, RoleShopSoftware}},
		{"POST", "/deadletters/{seq}/requeue", []Role{RoleManager}},
		{"POST", "/backup", []Role{RoleManager}},
	} {
		if got := find(c.method, c.path).Roles; !slices.Equal(got, c.want) {
			t.Errorf("%s %s: roles %v, want %v", c.method, c.path, got, c.want)
		}
	}
	// The monitor writes nothing.
	for _, rt := range f.api.Routes() {
		if isWrite(rt.Method) && rt.allows(RoleMonitor) {
			t.Errorf("%s %s allows the monitor", rt.Method, rt.Path)
		}
	}
}

func TestOwnerDataOnlyForFrontDeskAndManager(t *testing.T) {
	for _, anon := range []bool{false, true} {
		f := newFixture(t, anon)
		o := f.mustDo(201, "POST", "/workorders", newOrderBody)
		id := o["id"].(string)
		for _, role := range Roles {
			code, m := f.do("GET", "/workorders/"+id+"?include=owner", roleToken(role), "")
			owner, _ := m["owner"].(map[string]any)
			switch role {
			case RoleFrontDesk, RoleManager:
				if code != 200 || owner["name"] != ownerName {
					t.Errorf("%s: include=owner = %d %v", role, code, m)
				}
			default:
				if code != 403 || m["field"] != "include" || !strings.Contains(fmt.Sprint(m["error"]), "front_desk or manager") {
					t.Errorf("%s: include=owner = %d %v, want 403", role, code, m)
				}
			}
			// Without include the order never carries the owner, whatever the role.
			if _, m := f.do("GET", "/workorders/"+id, roleToken(role), ""); m["owner"] != nil {
				t.Errorf("%s: owner without include: %v", role, m)
			}
		}
		// A write asking for the owner back is refused before it does anything.
		code, _ := f.do("POST", "/workorders?include=owner", roleToken(RoleShopSoftware), newOrderBody)
		if code != 403 {
			t.Errorf("shop_software POST include=owner = %d", code)
		}
		if _, err := f.store.Get("WO000002"); err == nil {
			t.Errorf("the refused create stored an order")
		}
		if anon {
			if code, m := f.do("GET", "/workorders/"+id+"?include=owner", "", ""); code != 401 || m["owner"] != nil {
				t.Errorf("anonymous include=owner = %d %v", code, m)
			}
		}
	}
}

func TestWhoAmI(t *testing.T) {
	f := newFixture(t, true)
	for _, role := range Roles {
		code, m := f.do("GET", "/whoami", roleToken(role), "")
		if code != 200 || m["role"] != string(role) || m["name"] != "the-"+string(role) || m["anonymous"] != false {
			t.Fatalf("whoami as %s = %d %v", role, code, m)
		}
		if got, want := m["owner_data"] == true, role == RoleFrontDesk || role == RoleManager; got != want {
			t.Errorf("%s: owner_data %v", role, m["owner_data"])
		}
		may := fmt.Sprint(m["may"])
		if got := strings.Contains(may, "POST /bays/{bay}/clear-dtcs"); got != (role == RoleTechnician || role == RoleManager) {
			t.Errorf("%s may clear: %v (%s)", role, got, may)
		}
	}
	code, m := f.do("GET", "/whoami", "", "")
	if code != 200 || m["role"] != "monitor" || m["anonymous"] != true || m["owner_data"] != false {
		t.Fatalf("anonymous whoami = %d %v", code, m)
	}
	// A token configured without a role is the DMS's: shop_software.
	if _, m := f.do("GET", "/whoami", "tablet-token-0123456789", ""); m["role"] != "shop_software" {
		t.Fatalf("a token without a role: %v", m)
	}
}

func TestParseRoleNamesTheAllowedOnes(t *testing.T) {
	if r, err := ParseRole("front_desk"); err != nil || r != RoleFrontDesk {
		t.Fatal(r, err)
	}
	_, err := ParseRole("admin")
	if err == nil || !strings.Contains(err.Error(), "technician, front_desk, manager, shop_software, monitor") {
		t.Fatalf("ParseRole(admin) = %v", err)
	}
}

// TestOpenAPIStatesTheRoles: every operation's x-roles is the route's roles, in order; a public
// route has none.
func TestOpenAPIStatesTheRoles(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, false)
	for _, rt := range f.api.Routes() {
		op, _ := doc.Paths[rt.Path][strings.ToLower(rt.Method)].(map[string]any)
		var got []string
		if list, ok := op["x-roles"].([]any); ok {
			for _, r := range list {
				got = append(got, fmt.Sprint(r))
			}
		}
		want := make([]string, len(rt.Roles))
		for i, r := range rt.Roles {
			want[i] = string(r)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s %s: openapi x-roles %v, the route allows %v", rt.Method, rt.Path, got, want)
		}
	}
}
