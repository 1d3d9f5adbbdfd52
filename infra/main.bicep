// spemigrate on Azure: a resource group holding everything the Functions app
// needs (infra/resources.bicep), and optionally the Blob Data Reader role on
// the source storage account. azd fills the parameters from
// main.parameters.json; docs/deploy.md explains each.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name: names the resource group (rg-<name>) and tags every resource.')
param environmentName string

@minLength(1)
@metadata({ azd: { type: 'location' } })
@description('Region with Flex Consumption (custom runtime).')
param location string

@description('Object ID of whoever runs azd (azd sets it); used only when grantDeployerAccess is true.')
param principalId string = ''

@allowed([ 'User', 'ServicePrincipal' ])
param principalType string = 'User'

@description('Give the deploying principal data-plane roles (tables, queues, blobs) to run tools against this environment. Development environments only.')
param grantDeployerAccess bool = false

@secure()
@minLength(44)
@maxLength(44)
@description('SPEMIGRATE_STATE_KEY: base64 of 32 random bytes, sealing SAS URLs and keys at rest. infra/scripts/state-key.sh generates it once per environment; changing it makes stored secrets unreadable.')
param stateKey string

@description('Storage account holding the source containers (read with the app identity: Storage Blob Data Reader). Empty: none; sources then use SAS URLs.')
param sourceStorageAccountName string = ''

@description('Resource group of the source account. Empty: this environment\'s resource group.')
param sourceStorageResourceGroup string = ''

@description('Subscription of the source account. Empty: this subscription.')
param sourceStorageSubscriptionId string = ''

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@allowed([ 512, 2048, 4096 ])
param instanceMemoryMB int = 2048

@allowed([ 'Standard', 'Premium' ])
param serviceBusSku string = 'Standard'

@allowed([ 'warn', 'require', 'off' ])
@description('SPEMIGRATE_GRAPH_PERMISSION_CHECK: what a Graph token without FileStorageContainer.Selected does at start-up.')
param graphPermissionCheck string = 'warn'

var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-11-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module app './resources.bicep' = {
  name: 'spemigrate'
  scope: rg
  params: {
    location: location
    tags: tags
    token: token
    stateKey: stateKey
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    serviceBusSku: serviceBusSku
    graphPermissionCheck: graphPermissionCheck
    deployerPrincipalId: grantDeployerAccess ? principalId : ''
    deployerPrincipalType: principalType
  }
}

module sourceReader './modules/source-reader.bicep' = if (!empty(sourceStorageAccountName)) {
  name: 'spemigrate-source-reader'
  scope: resourceGroup(empty(sourceStorageSubscriptionId) ? subscription().subscriptionId : sourceStorageSubscriptionId, empty(sourceStorageResourceGroup) ? rg.name : sourceStorageResourceGroup)
  params: {
    storageAccountName: sourceStorageAccountName
    principalId: app.outputs.identityPrincipalId
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.appName
output SPEMIGRATE_API_URL string = 'https://${app.outputs.defaultHostName}/api'
output AZURE_IDENTITY_CLIENT_ID string = app.outputs.identityClientId
output AZURE_IDENTITY_PRINCIPAL_ID string = app.outputs.identityPrincipalId
output SERVICEBUS_FQDN string = app.outputs.serviceBusFqdn
output AZURE_STORAGE_ACCOUNT string = app.outputs.storageName
output AZURE_KEY_VAULT_NAME string = app.outputs.keyVaultName
