from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Training"

    def ready(self) -> None:
        from training.schedule import sync_periodic_tasks

        # After every migrate, the beat schedule follows the settings (enabled or not).
        post_migrate.connect(sync_periodic_tasks, sender=self, dispatch_uid="training-beat")
