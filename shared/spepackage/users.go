package spepackage

import (
	"io"
	"strconv"
	"strings"
)

// Identity is a person as the source knows them. Login is a UPN
// (alice@contoso.com) or an already-formed claims login
// (i:0#.f|membership|alice@contoso.com); Email is used when Login is empty.
// An identity with neither cannot be mapped.
//
// Deleted marks an account that no longer exists in the directory
// (UserGroup.xml IsDeleted="true"): SharePoint then skips the costly lookup
// and keeps the name (§6.3.4). SystemID, when the source knows it (the
// base64 SID or system id), lets SharePoint create a deleted placeholder
// user instead of falling back to System Account when the login does not
// resolve.
type Identity struct {
	Login    string
	Email    string
	Name     string
	Deleted  bool
	SystemID string
}

// claimsLogin is the UPN-based login UserGroup.xml needs (§6.3.4), or "" when
// the identity has nothing UPN-like: a non-UPN login "causes unexpected
// behaviour", so such an item falls back to SharePoint's default author.
func (id Identity) claimsLogin() string {
	l := strings.TrimSpace(id.Login)
	if strings.Contains(l, "|") {
		return l
	}
	if strings.Contains(l, "@") {
		return "i:0#.f|membership|" + strings.ToLower(l)
	}
	if e := strings.TrimSpace(id.Email); strings.Contains(e, "@") {
		return "i:0#.f|membership|" + strings.ToLower(e)
	}
	return ""
}

// ClaimsLogin is the login the package names for the identity in
// UserGroup.xml, or "" when it names none (the item then gets SharePoint's
// default author).
func (id Identity) ClaimsLogin() string { return id.claimsLogin() }

// userMap collects the identities a manifest refers to, each declared once
// (the service blocks duplicate users, §6.3.4).
type userMap struct {
	index  map[string]int
	list   []Identity
	logins []string
}

// id returns the user id for an identity, or "" when it cannot be mapped.
func (u *userMap) id(who Identity) string {
	login := who.claimsLogin()
	if login == "" {
		return ""
	}
	k := strings.ToLower(login)
	if n, ok := u.index[k]; ok {
		return strconv.Itoa(n)
	}
	u.list = append(u.list, who)
	u.logins = append(u.logins, login)
	n := len(u.list)
	u.index[k] = n
	return strconv.Itoa(n)
}

func (u *userMap) write(w io.Writer) error {
	x := newXW(w)
	x.start("UserGroupMap", "xmlns", "urn:deployment-usergroupmap-schema")
	x.start("Users")
	for i, who := range u.list {
		email := strings.TrimSpace(who.Email)
		if email == "" && strings.Contains(who.Login, "@") && !strings.Contains(who.Login, "|") {
			email = strings.TrimSpace(who.Login)
		}
		name := who.Name
		if name == "" {
			name = email
		}
		x.empty("User",
			"Id", strconv.Itoa(i+1),
			"Name", name,
			"Login", u.logins[i],
			"Email", email,
			"IsDomainGroup", "false",
			"IsSiteAdmin", "false",
			"SystemId", strings.TrimSpace(who.SystemID),
			"IsDeleted", strconv.FormatBool(who.Deleted),
			"Flags", "0")
	}
	x.end("Users")
	x.empty("Groups")
	x.end("UserGroupMap")
	return x.close()
}
