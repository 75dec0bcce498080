-- 0017: the flows table's indexes cover only what a query asks for (issue 10 benchmark).
-- Every ProTexting opt-in inserts a flow, and each index is one more B-tree insert.
-- flows_account (account_id, created_ms, id) served no query: the account's list pages by
-- rowid and is served by flows_contact's account_id prefix, as before.
DROP INDEX flows_account;
-- Only a flow with an ext_ref is looked up by it (Q_FLOW_LIST_EXT_REF, which asks for a
-- non-empty one): ProTexting's and the native API's flows without one stay out.
DROP INDEX flows_ext_ref;
CREATE INDEX flows_ext_ref ON flows(account_id, ext_ref) WHERE ext_ref <> '';
