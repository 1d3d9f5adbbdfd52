package graphemu

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// Permission is the Graph permission every migration operation needs
// (spec §2.0), as an app role or a delegated scope.
const Permission = "FileStorageContainer.Selected"

// Token returns a bearer token for the RequirePermission and
// RegisteredApps knobs: an unsigned JWT (the emulator reads claims, it
// checks no signature) for appID with the given app roles.
func Token(appID string, roles ...string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	if roles == nil {
		roles = []string{}
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." +
		enc(map[string]any{"appid": appID, "roles": roles}) + "."
}

type tokenClaims struct {
	AppID string   `json:"appid"`
	AZP   string   `json:"azp"`
	Roles []string `json:"roles"`
	Scp   string   `json:"scp"`
}

// claims decodes a JWT's payload without checking its signature.
func claims(token string) (tokenClaims, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return tokenClaims{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return tokenClaims{}, false
	}
	var c tokenClaims
	return c, json.Unmarshal(b, &c) == nil
}

// denied is the reason for a 403, or "" when the token may call Graph:
// with RequirePermission it must carry FileStorageContainer.Selected, and
// with RegisteredApps its app must be registered for the container type.
func (s *Server) denied(r *http.Request) string {
	k := s.cfg.Knobs
	if !k.RequirePermission && k.RegisteredApps == nil {
		return ""
	}
	tok := strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	c, ok := claims(tok)
	if !ok {
		return "Access denied: the access token is not a JWT carrying the " + Permission + " permission."
	}
	if k.RequirePermission && !slices.Contains(c.Roles, Permission) && !slices.Contains(strings.Fields(c.Scp), Permission) {
		return "Access denied: the token lacks the " + Permission + " permission; grant it to the app and consent."
	}
	app := c.AppID
	if app == "" {
		app = c.AZP
	}
	if k.RegisteredApps != nil && !slices.ContainsFunc(k.RegisteredApps, func(a string) bool { return strings.EqualFold(a, app) }) {
		return "Access denied: application '" + app + "' is not registered for the container type in this tenant."
	}
	return ""
}
