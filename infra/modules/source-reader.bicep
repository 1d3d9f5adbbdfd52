// Storage Blob Data Reader for the app identity on the source storage
// account, deployed into the account's own resource group. The deployer
// needs the right to assign roles there; otherwise the account's owner
// assigns the role to AZURE_IDENTITY_PRINCIPAL_ID (docs/deploy.md).
param storageAccountName string

@description('Object (principal) ID of the app identity.')
param principalId string

var blobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'

resource source 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(source.id, principalId, blobDataReader)
  scope: source
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
