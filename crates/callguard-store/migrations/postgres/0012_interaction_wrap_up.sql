-- Wrap-up: the disposition code an agent picks when a call is done (one of the configured
-- codes), and the indexes the desk reads: an agent's own interactions newest first, and a
-- customer's timeline newest first.
ALTER TABLE interactions ADD COLUMN disposition TEXT;
CREATE INDEX interactions_agent_started ON interactions(agent_id, started_at);
CREATE INDEX interactions_customer_started ON interactions(customer_id, started_at);
