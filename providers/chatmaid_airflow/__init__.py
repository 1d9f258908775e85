"""chatmaid_airflow: the Apache Airflow provider for the Chatmaid WhatsApp API.

Modules follow Airflow's provider layout: ``hooks``, ``operators``, ``sensors``,
``triggers`` and ``notifications`` (each a ``chatmaid`` module), and ``get_provider_info``
for Airflow's provider discovery. Everything talks to the API through the core
package ``chatmaid``.
"""

from chatmaid import __version__

__all__ = ["__version__"]
