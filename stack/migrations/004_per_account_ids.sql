-- Customer record ids are scoped by account: the identity of a ticket,
-- invoice, NPS answer, interaction or stakeholder is (account_id, id).
-- Until now the id alone was the primary key, so one customer's INV-1001 was
-- another's, an upsert from one account overwrote the other's row, and a
-- colliding ticket or NPS answer was silently dropped. Existing rows are kept
-- as they are: (account_id, id) is unique wherever id alone was.

ALTER TABLE support_tickets DROP CONSTRAINT IF EXISTS support_tickets_pkey;
ALTER TABLE support_tickets ADD PRIMARY KEY (account_id, ticket_id);

ALTER TABLE invoices DROP CONSTRAINT IF EXISTS invoices_pkey;
ALTER TABLE invoices ADD PRIMARY KEY (account_id, invoice_id);

ALTER TABLE nps_responses DROP CONSTRAINT IF EXISTS nps_responses_pkey;
ALTER TABLE nps_responses ADD PRIMARY KEY (account_id, response_id);

ALTER TABLE interactions DROP CONSTRAINT IF EXISTS interactions_pkey;
ALTER TABLE interactions ADD PRIMARY KEY (account_id, interaction_id);

ALTER TABLE stakeholders DROP CONSTRAINT IF EXISTS stakeholders_pkey;
ALTER TABLE stakeholders ADD PRIMARY KEY (account_id, stakeholder_id);
