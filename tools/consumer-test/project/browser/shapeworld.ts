// @vlm/shapeworld in a browser bundle (cpu backend only): a seeded scene, its captions, PNG round trip.
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '@vlm/core';
import { canonicalCaption, decodePng, encodePng, imagesToTensor, renderScene, sampleScene } from '@vlm/shapeworld';
import { report } from './report';

report(async () => {
  await selectBackend(['cpu']);
  const scene = sampleScene(7);
  const image = renderScene(scene);
  const back = decodePng(encodePng(image));
  if (back.width !== image.width || back.data.some((v, i) => v !== image.data[i])) throw new Error('PNG round trip changed the pixels');
  const batch = imagesToTensor([image]);
  const shape = batch.shape.join('x');
  batch.dispose();
  return `scene 7: "${canonicalCaption(scene)}", ${image.width}×${image.height}, tensor ${shape}`;
});
