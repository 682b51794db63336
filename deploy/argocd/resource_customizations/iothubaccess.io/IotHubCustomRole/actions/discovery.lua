-- Argo CD resource actions for the iothub-access-operator kinds (the same script for each).
-- "reconcile" asks the operator to reconcile now, on fresh Azure reads; it is offered while the
-- operator reconciles the resource: not while it is being deleted, nor when the annotation
-- iothubaccess.io/reconcile is skip. Only Lua's base library is used.
local actions = {}
local metadata = obj.metadata or {}
local annotations = metadata.annotations or {}
local deleting = metadata.deletionTimestamp ~= nil
local skipped = annotations["iothubaccess.io/reconcile"] == "skip"
actions["reconcile"] = {
  ["displayName"] = "Reconcile now",
  ["iconClass"] = "fa fa-fw fa-sync",
  ["disabled"] = deleting or skipped,
}
return actions
