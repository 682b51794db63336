-- Argo CD resource action "reconcile" for the iothub-access-operator kinds (the same script for
-- each): sets the annotation iothubaccess.io/reconcile-requested-at to a new token, the UTC time
-- of the request; the operator reconciles at once on fresh Azure reads and then reports the
-- token in status.lastHandledReconcileAt. A token equal to the one already there would do
-- nothing, so a second request within the same second gets "#2" appended. Argo CD sends the
-- difference to the live object as a merge patch: only this annotation.
local os = require("os")
local key = "iothubaccess.io/reconcile-requested-at"
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
local token = os.date("!%Y-%m-%dT%H:%M:%SZ")
if obj.metadata.annotations[key] == token then
  token = token .. "#2"
end
obj.metadata.annotations[key] = token
return obj
