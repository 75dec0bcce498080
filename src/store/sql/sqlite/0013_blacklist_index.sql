-- 0013 (issue 11): the blacklist of an account -- its contacts opted out of "all" -- as a
-- partial index, so that removing blacklisted numbers from a list (Octopush's
-- auto_remove_blacklisted_numbers) costs the size of the blacklist, not of the list, and
-- the many group and type consents pay nothing for it.
CREATE INDEX consents_blacklist ON consents(account_id, contact_id)
    WHERE scope = 'all' AND state = 'opted_out';
