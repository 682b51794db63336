-- Argo CD health check for the iothub-access-operator kinds (iothubaccess.io: IotHubRoleAssignment,
-- IotHubCustomRole, IotHubSharedAccess; the same script for each). It reads the status as the
-- operator writes it (src/controller/status.rs), kstatus style:
--   status.observedGeneration, and each condition's, is the generation the verdict is about;
--   Ready is True only when Azure matches the spec; reason and message say why not;
--   Reconciling (work under way that finishes by itself) and Stalled (a refusal or an error that a
--   person must fix) are present only while True.
-- Only Lua's base library is used: it runs as installed through argocd-cm, standard libraries
-- closed (no resource.customizations.useOpenLibs key needed).

local function condition(conditions, type_)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

-- The condition's message, or its reason when it has none.
local function said(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

-- Ready=False reasons of work that finishes by itself (the operator's `progress()`: Working);
-- PendingChanges is observe mode reporting what it would write (Done); any other reason is a
-- refusal or a failure that a person must fix (Stalled: an unknown reason is never hidden).
local working = {
  WaitingForCustomRole = true,
  PrincipalRefNotFound = true,
  Throttled = true,
  AzureError = true,
  KubernetesError = true,
  ScopesUnknown = true,
  Deleting = true,
  Progressing = true,
  Drifted = true,
}
-- Ready reasons of a refused deletion, whose message says what holds it.
local deletion = { InUse = true, RoleDefinitionHasAssignments = true, Deleting = true }

local metadata = obj.metadata or {}
local status = obj.status or {}
local conditions = status.conditions
local ready = condition(conditions, "Ready")

if metadata.deletionTimestamp ~= nil then
  if ready ~= nil and ready.status == "False" and deletion[ready.reason] then
    return { status = "Progressing", message = "Deleting: " .. said(ready, "") }
  end
  return { status = "Progressing", message = "Deleting: the operator cleans up Azure, then removes its finalizer" }
end

local annotations = metadata.annotations or {}
if annotations["iothubaccess.io/reconcile"] == "skip" then
  return { status = "Suspended", message = "Not reconciled: annotation iothubaccess.io/reconcile is skip" }
end

if obj.status == nil or conditions == nil or #conditions == 0 then
  return { status = "Progressing", message = "Waiting for the operator to reconcile" }
end

local generation = metadata.generation
if generation ~= nil then
  local observed = status.observedGeneration
  if observed == nil or observed < generation then
    local reconciling = condition(conditions, "Reconciling")
    if is_true(reconciling) then
      return { status = "Progressing", message = said(reconciling, "Reconciling") }
    end
    local seen = "none"
    if observed ~= nil then
      seen = tostring(observed)
    end
    return {
      status = "Progressing",
      message = "Waiting for the operator to reconcile generation " .. tostring(generation) .. " (observed: " .. seen .. ")",
    }
  end
  if ready ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
    return { status = "Progressing", message = "Waiting for the operator to reconcile generation " .. tostring(generation) }
  end
end

local reconciling = condition(conditions, "Reconciling")
if is_true(reconciling) then
  return { status = "Progressing", message = said(reconciling, "Reconciling") }
end

local stalled = condition(conditions, "Stalled")
if is_true(stalled) then
  return { status = "Degraded", message = said(stalled, "Stalled") }
end

if ready == nil then
  return { status = "Progressing", message = "Waiting for the Ready condition" }
end

if ready.status == "True" then
  local message = said(ready, "Ready")
  local least = condition(conditions, "LeastPrivilege")
  if least ~= nil and least.status == "False" then
    message = message .. "; warning: " .. said(least, "broader access than the spec asks for")
  end
  return { status = "Healthy", message = message }
end

if ready.status == "False" then
  if ready.reason == "PendingChanges" then
    return { status = "Healthy", message = said(ready, "PendingChanges") }
  end
  if working[ready.reason] then
    return { status = "Progressing", message = said(ready, "Reconciling") }
  end
  return { status = "Degraded", message = said(ready, "Not ready") }
end

return { status = "Progressing", message = said(ready, "Ready is Unknown") }
