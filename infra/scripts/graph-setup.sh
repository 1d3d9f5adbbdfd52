#!/usr/bin/env bash
# Microsoft Graph and SharePoint Embedded setup for a deployed spemigrate,
# the steps Bicep does not do (docs/deploy.md, "Graph permission"). Needs
# the Azure CLI, logged in (az login) as someone with the rights each step
# names. Run from the repository root after `azd up`; values come from the
# azd environment unless given as flags.
#
#   infra/scripts/graph-setup.sh approle [--dry-run]
#       Grants the app identity the Graph application permission
#       FileStorageContainer.Selected. For a managed identity this app-role
#       assignment is the admin consent. Needs Privileged Role
#       Administrator (or Global Administrator) in the tenant.
#
#   infra/scripts/graph-setup.sh register --container-type <id> [--permissions readContent,writeContent] [--dry-run]
#       Adds the app identity to the SharePoint Embedded container type's
#       registration in this tenant, so its token may reach the containers.
#       Only the container type's owning application can do this: log in
#       as it (az login --service-principal ...; it needs Graph
#       FileStorageContainerTypeReg.Selected) or as a SharePoint Embedded
#       Administrator for the delegated form.
#
#   infra/scripts/graph-setup.sh app-registration --name <display name> [--dry-run]
#       For running spemigrate outside Azure (a client secret or
#       certificate instead of the managed identity): creates an app
#       registration requesting FileStorageContainer.Selected and grants
#       admin consent. Then set SPEMIGRATE_GRAPH_CREDENTIAL=clientSecret
#       (or clientCertificate) with its tenant, client ID and secret.
#
#   infra/scripts/graph-setup.sh check
#       Shows the identity's Graph app roles.
#
# Changes can take an hour or more to reach tokens and SharePoint; the
# handler logs "Graph permission check failed" at start-up until the role
# is in its token (restart the app after granting: tokens are cached).
set -euo pipefail

GRAPH_APP_ID=00000003-0000-0000-c000-000000000000
FILE_STORAGE_CONTAINER_SELECTED=40dc41bc-0f7e-42ff-89bd-d9516947e474
GRAPH=https://graph.microsoft.com/v1.0

dry_run=false
container_type=""
permissions="readContent,writeContent"
name=""
cmd="${1:-}"
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=true ;;
    --container-type) container_type="$2"; shift ;;
    --permissions) permissions="$2"; shift ;;
    --name) name="$2"; shift ;;
    --principal-id) AZURE_IDENTITY_PRINCIPAL_ID="$2"; shift ;;
    --client-id) AZURE_IDENTITY_CLIENT_ID="$2"; shift ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
  shift
done

run() {
  if $dry_run; then
    printf '+'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

env_value() {
  local v="${!1:-}"
  if [ -z "$v" ] && command -v azd >/dev/null; then
    v="$(azd env get-value "$1" 2>/dev/null || true)"
  fi
  if [ -z "$v" ]; then
    echo "$1 is not set: run after azd up, or pass it as a flag" >&2
    exit 1
  fi
  printf '%s' "$v"
}

case "$cmd" in
  approle)
    principal="$(env_value AZURE_IDENTITY_PRINCIPAL_ID)"
    if $dry_run; then
      graph_sp="<object id of the Microsoft Graph service principal>"
      existing=0
    else
      graph_sp="$(az ad sp show --id "$GRAPH_APP_ID" --query id -o tsv)"
      # Posting a duplicate assignment fails, so look first.
      existing="$(az rest --method GET --uri "$GRAPH/servicePrincipals/$principal/appRoleAssignments" \
        --query "length(value[?appRoleId=='$FILE_STORAGE_CONTAINER_SELECTED' && resourceId=='$graph_sp'])" -o tsv)"
    fi
    if [ "$existing" != "0" ]; then
      echo "FileStorageContainer.Selected: already granted to $principal"
      exit 0
    fi
    run az rest --method POST --uri "$GRAPH/servicePrincipals/$principal/appRoleAssignments" \
      --headers "Content-Type=application/json" \
      --body "{\"principalId\":\"$principal\",\"resourceId\":\"$graph_sp\",\"appRoleId\":\"$FILE_STORAGE_CONTAINER_SELECTED\"}"
    echo "FileStorageContainer.Selected granted to $principal; restart the Function App so it gets a new token"
    ;;
  register)
    [ -n "$container_type" ] || { echo "register needs --container-type <container type id>" >&2; exit 2; }
    client="$(env_value AZURE_IDENTITY_CLIENT_ID)"
    perms="\"${permissions//,/\",\"}\""
    # The single-grant form leaves the other apps' grants as they are.
    run az rest --method PUT \
      --uri "$GRAPH/storage/fileStorage/containerTypeRegistrations/$container_type/applicationPermissionGrants/$client" \
      --headers "Content-Type=application/json" \
      --body "{\"delegatedPermissions\":[\"none\"],\"applicationPermissions\":[$perms]}"
    echo "container type $container_type: $client may now $permissions (allow up to an hour or more before it applies)"
    ;;
  app-registration)
    [ -n "$name" ] || { echo "app-registration needs --name <display name>" >&2; exit 2; }
    if $dry_run; then
      app_id="<new app id>"
      run az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg --query appId -o tsv
    else
      app_id="$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg --query appId -o tsv)"
    fi
    run az ad sp create --id "$app_id"
    run az ad app permission add --id "$app_id" --api "$GRAPH_APP_ID" --api-permissions "$FILE_STORAGE_CONTAINER_SELECTED=Role"
    # Needs Privileged Role Administrator / Global Administrator.
    run az ad app permission admin-consent --id "$app_id"
    echo "app registration $app_id requests FileStorageContainer.Selected (consented); add a secret or certificate with az ad app credential reset --id $app_id"
    ;;
  check)
    principal="$(env_value AZURE_IDENTITY_PRINCIPAL_ID)"
    az rest --method GET --uri "$GRAPH/servicePrincipals/$principal/appRoleAssignments" \
      --query "value[].{role:appRoleId, resource:resourceDisplayName}" -o table
    echo "FileStorageContainer.Selected is $FILE_STORAGE_CONTAINER_SELECTED"
    ;;
  *)
    sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
