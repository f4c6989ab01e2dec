package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Role is what a token may do (api.md "Roles"). Every route names the roles that may call it
// (Route.Roles); a token of another role is answered 403 naming the roles needed.
type Role string

const (
	RoleTechnician   Role = "technician"    // works on the car: scans, fault-code clears, self-tests, items and parts
	RoleFrontDesk    Role = "front_desk"    // service advisor: opens and settles orders, sees the owner
	RoleManager      Role = "manager"       // everything, the audit log and the backup included
	RoleShopSoftware Role = "shop_software" // the shop's DMS: orders and settlement, no owner data
	RoleMonitor      Role = "monitor"       // read-only; anonymous reads have this role
)

// Roles lists every role, in the order the docs show them.
var Roles = []Role{RoleTechnician, RoleFrontDesk, RoleManager, RoleShopSoftware, RoleMonitor}

// DefaultRole is the role of a token configured without one (configurations written before
// roles existed: the DMS's token).
const DefaultRole = RoleShopSoftware

// ParseRole checks a role name, naming the allowed ones when it is not one.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return "", fmt.Errorf("api: role %q: want one of %s", clip(s), strings.Join(names, ", "))
}

// The role sets the route table uses.
var (
	anyRole   = Roles
	ownerRead = []Role{RoleFrontDesk, RoleManager} // owner name and phone
	orderDesk = []Role{RoleFrontDesk, RoleManager, RoleShopSoftware}
	orderWork = []Role{RoleTechnician, RoleFrontDesk, RoleManager, RoleShopSoftware}
	carWork   = []Role{RoleTechnician, RoleManager, RoleShopSoftware}
	carRisky  = []Role{RoleTechnician, RoleManager} // a fault-code clear, a rig's self-test
	corrector = []Role{RoleManager, RoleShopSoftware}
	managers  = []Role{RoleManager}
	wasteDesk = []Role{RoleFrontDesk, RoleManager}
)

// mayReadOwner: owner name and phone are for the front desk and the manager only.
func (c *caller) mayReadOwner() bool { return slices.Contains(ownerRead, c.role) }

// allows reports whether role may call rt. A public route (no roles) allows everyone.
func (rt Route) allows(role Role) bool { return rt.Roles == nil || slices.Contains(rt.Roles, role) }

func roleList(rs []Role) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = string(r)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// forbidden is the 403 of a caller whose role may not do what it asked.
func forbidden(c *caller, what string, need []Role) *apiError {
	who := "an anonymous reader (role monitor)"
	if c.authenticated() {
		who = fmt.Sprintf("the token %q has the role %s", c.name, c.role)
	}
	return &apiError{status: http.StatusForbidden, msg: fmt.Sprintf("%s needs the role %s; %s", what, roleList(need), who),
		extra: map[string]any{"code": "role", "role": string(c.role), "roles_needed": need}}
}

// whoami tells the console who it is: the token's name and role, whether it may see owner
// data, and the routes it may call (so the console hides what it cannot do).
func (s *Server) whoami(w http.ResponseWriter, r *http.Request, c *caller) {
	may := []string{}
	for _, rt := range s.routes {
		if rt.Roles != nil && rt.allows(c.role) {
			may = append(may, rt.Method+" "+rt.Path)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": c.name, "role": c.role, "anonymous": !c.authenticated(),
		"owner_data": c.mayReadOwner(), "may": may})
}
